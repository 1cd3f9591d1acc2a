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
// RSAES-PKCS1-v1_5, then base64 (`APIRequest#createBearerToken`).
'use strict';

const crypto = require('crypto');

const APIMethodType = Object.freeze({ GET: 'GET', POST: 'POST', PUT: 'PUT', DELETE: 'DELETE' });

class PortalSDKError extends Error {}

/** Where and how a call goes: keys, SSL, method, address, port, path, headers, parameters. */
class APIContext {
  constructor({
    apiKey = '', publicKey = '', ssl = false, methodType = APIMethodType.GET,
    address = '', port = 80, path = '', headers = {}, parameters = {}, timeoutMs = 60000,
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
    const text = String(this.context.publicKey).replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    let key;
    try {
      key = crypto.createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
    } catch (e) {
      throw new PortalSDKError(`the public key is not a base64 RSA public key: ${e.message}`);
    }
    return crypto
      .publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING },
        Buffer.from(String(this.context.apiKey), 'ascii'))
      .toString('base64');
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
    try {
      answer = await fetch(url, {
        method, headers: this.context.getHeaders(), body,
        signal: AbortSignal.timeout(this.context.timeoutMs),
      });
    } catch (e) {
      throw new PortalSDKError(`the call to ${url} failed: ${e.cause ? e.cause.message : e.message}`);
    }
    const text = await answer.text();
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
