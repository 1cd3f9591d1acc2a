// M-Pesa OpenAPI portal library for Node.js 18+, from Mkoba's developer portal.
//
// One file, Node's own modules only: save it beside your code and
// `const { APIContext, APIMethodType, APIRequest } = require('./portalsdk');`. It follows the
// portal's "API structure": a context (API key and public key, SSL, method type, resource
// URL), the request parameters, then the response.
//
//   const context = new APIContext({ apiKey: API_KEY, publicKey: PUBLIC_KEY, ssl: false,
//     methodType: APIMethodType.GET, address: '127.0.0.1', port: 8080,
//     path: '/sandbox/ipg/v2/vodacomTZN/getSession/' });
//   context.addHeader('Origin', '*');
//   const response = await new APIRequest(context).execute();
//   console.log(response.statusCode, response.body);
//   // v2: every later call carries the session id instead of the API key.
//   context.apiKey = response.body.output_SessionID;
//
// The bearer is the API key (or session id) encrypted under the public key with
// RSAES-PKCS1-v1_5, then base64 (`APIRequest#createBearerToken`). A `GET` sends the
// parameters as its query string, `POST` and `PUT` as a JSON object; a context keeps its
// parameters from call to call (`clearParameters` empties them). `timeoutMs` (90 s unless
// given) bounds the whole call: the gateway answers a payment the customer never approves
// with 408 INS-9 after about a minute. Anything that stops a call before an answer (an
// unreadable key, no connection, the timeout) rejects with a `PortalSDKError`; an answer
// resolves whatever its status.
'use strict';

const crypto = require('crypto');

const APIMethodType = Object.freeze({ GET: 'GET', POST: 'POST', PUT: 'PUT', DELETE: 'DELETE' });

class PortalSDKError extends Error {}

/** Where and how a call goes: keys, SSL, method, address, port, path, headers, parameters. */
class APIContext {
  constructor({
    apiKey = '', publicKey = '', ssl = false, methodType = APIMethodType.GET,
    address = '', port = 80, path = '', headers = {}, parameters = {}, timeoutMs = 90000,
  } = {}) {
    Object.assign(this, { apiKey, publicKey, ssl, methodType, address, port, path, timeoutMs });
    this.headers = { ...headers };
    this.parameters = { ...parameters };
  }

  getUrl() {
    return `${this.ssl ? 'https' : 'http'}://${this.address}:${this.port}${this.path}`;
  }

  addHeader(header, value) { this.headers[header] = value; }

  getHeaders() { return this.headers; }

  addParameter(key, value) { this.parameters[key] = value; }

  getParameters() { return this.parameters; }

  clearParameters() { this.parameters = {}; }
}

/** The answer: its status code, its headers and its body (the JSON object, or the text). */
class APIResponse {
  constructor(statusCode, headers, body) {
    Object.assign(this, { statusCode, headers, body });
  }
}

class APIRequest {
  constructor(context) {
    this.context = context;
  }

  /** The API key (or session id) encrypted under the public key, base64. */
  createBearerToken() {
    const apiKey = this.context.apiKey;
    if (typeof apiKey !== 'string' || apiKey === '') {
      throw new PortalSDKError('no API key (or session id) in the context');
    }
    if (!/^[\x00-\x7f]*$/.test(apiKey)) {
      throw new PortalSDKError('the API key (or session id) is not ASCII: copy it from the portal as it is');
    }
    const text = String(this.context.publicKey || '').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    let key;
    try {
      key = crypto.createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
    } catch (e) {
      throw new PortalSDKError(`the public key is not a base64 RSA public key: ${e.message}`);
    }
    if (key.asymmetricKeyType !== 'rsa') {
      throw new PortalSDKError('the public key is not a base64 RSA public key');
    }
    if (apiKey.length > key.asymmetricKeyDetails.modulusLength / 8 - 11) {
      throw new PortalSDKError('the API key is too long for the public key');
    }
    try {
      return crypto
        .publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(apiKey, 'ascii'))
        .toString('base64');
    } catch (e) {
      throw new PortalSDKError(`encrypting the API key failed: ${e.message}`);
    }
  }

  createDefaultHeaders() {
    this.context.addHeader('Authorization', `Bearer ${this.createBearerToken()}`);
    this.context.addHeader('Content-Type', 'application/json');
  }

  /** Sends the call; resolves to its APIResponse, whatever its status. */
  async execute() {
    if (!this.context) throw new TypeError('Context cannot be null.');
    const method = this.context.methodType;
    if (!Object.values(APIMethodType).includes(method)) {
      throw new TypeError('methodType must be one of APIMethodType');
    }
    this.createDefaultHeaders();
    let url = this.context.getUrl();
    let body;
    if (method === APIMethodType.GET) {
      const query = new URLSearchParams(this.context.getParameters()).toString();
      if (query) url += (url.includes('?') ? '&' : '?') + query;
    } else {
      body = JSON.stringify(this.context.getParameters());
    }
    let answer;
    let text;
    try {
      answer = await fetch(url, {
        method, headers: this.context.getHeaders(), body,
        signal: AbortSignal.timeout(this.context.timeoutMs),
      });
      text = await answer.text();
    } catch (e) {
      const why = e.name === 'TimeoutError'
        ? `it took longer than ${this.context.timeoutMs} ms`
        : (e.cause ? e.cause.message : e.message);
      throw new PortalSDKError(`the call to ${url} failed: ${why}`);
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (_) {
      parsed = text;
    }
    return new APIResponse(answer.status, Object.fromEntries(answer.headers), parsed);
  }
}

module.exports = { APIContext, APIMethodType, APIRequest, APIResponse, PortalSDKError };
