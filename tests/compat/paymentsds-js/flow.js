#!/usr/bin/env node
// Compatibility flow: the published npm client `@paymentsds/mpesa` (PaymentsDS,
// pinned in package.json) driven against a running Mkoba server that speaks the
// Vodacom Mozambique "v1x" gateway.
//
// Env:
//   MPESA_HOST        scheme + host, NO port and no path, e.g. http://127.0.0.1. The
//                     library appends its fixed per-API port (:18352 C2B, :18345 B2C,
//                     :18349 B2B, :18354 reversal, :18353 status) and the path itself.
//   MPESA_API_KEY     the application's API key
//   MPESA_PUBLIC_KEY  the server's public key: base64 of the SPKI DER, one line
//   MPESA_PORTS       optional, e.g. c2b=41001,b2c=41002,b2b=41003,reversal=41004,
//                     status=41005,name=41006: replaces the library's fixed port for
//                     each API named (by setting .port on the library's own OPERATIONS
//                     table). Unnamed APIs keep the real port. `name` is accepted and
//                     ignored (this library has no customer-name query). Without
//                     MPESA_PORTS the library's ports are used unchanged.
//   MPESA_ORIGIN      optional Origin header value (default "*", the library's default)
//   MPESA_SHORTCODE   optional service provider code (default 171717)
//   MPESA_MSISDN      optional customer MSISDN (default 258841234567)
//   MPESA_RECEIVER    optional B2B receiver party code (default 979797)
//   MPESA_TIMEOUT     optional per-request timeout in seconds (default 30)
//   MPESA_TRACE       "1" to print every HTTP exchange the library makes (stderr)
//
// The calls are made by the library's own public methods (Client.receive,
// Client.send for B2C and B2B, Client.query, Client.revert); nothing here builds a
// request by hand. The only changes to the library's behaviour are MPESA_PORTS, when
// given, and the library's own `timeout` option (plus a fallback in the wire tap) so
// a stuck server fails the flow instead of hanging it.
//
// Prints `ok <step>: <json>` per passed step, `FAIL <step>: ...` per failure and
// `skip <step>: ...` for a step the library cannot do, then a final
// `N passed, M failed` line. Exit 0 only if nothing failed.
"use strict";

const crypto = require("crypto");
const net = require("net");
const path = require("path");

// The target is always a local server: never let axios pick up a proxy from the env
// (axios 0.19 honours http_proxy/HTTP_PROXY/https_proxy/HTTPS_PROXY on its own).
for (const k of ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]) {
  delete process.env[k];
}

const HOST = (process.env.MPESA_HOST || "").trim();
const API_KEY = process.env.MPESA_API_KEY || "";
const PUBLIC_KEY = (process.env.MPESA_PUBLIC_KEY || "").replace(/\s+/g, "");
const ORIGIN = process.env.MPESA_ORIGIN || "*";
const SHORTCODE = process.env.MPESA_SHORTCODE || "171717";
const MSISDN = process.env.MPESA_MSISDN || "258841234567";
const RECEIVER = process.env.MPESA_RECEIVER || "979797";
const PORTS_SPEC = (process.env.MPESA_PORTS || "").trim();
const TIMEOUT_S = Number(process.env.MPESA_TIMEOUT || "30");
const TRACE = process.env.MPESA_TRACE === "1";

const AMOUNT = "10";
const INITIATOR = "MkobaInitiator"; // the library validates both with /^\w+$/
const SECURITY_CREDENTIAL = "MkobaCredential1";
const STEP_TIMEOUT_MS = Math.round(TIMEOUT_S * 1000) + 5000;

// flow key -> the library's operation code in constants OPERATIONS
const OPCODES = {
  c2b: "C2B_PAYMENT",
  b2c: "B2C_PAYMENT",
  b2b: "B2B_PAYMENT",
  reversal: "REVERSAL",
  status: "QUERY_TRANSACTION_STATUS",
  name: null, // the gateway's queryCustomerName (19323): not in this library
};
// What the server must answer for a successful synchronous call (reference §6.2:
// 201 for the POST/PUT money calls, 200 for the GETs). The library itself accepts
// any 2xx (axios validateStatus); the flow is stricter.
const EXPECTED = {
  c2b: ["POST", "/ipg/v1x/c2bPayment/singleStage/", 201],
  b2c: ["POST", "/ipg/v1x/b2cPayment/", 201],
  b2b: ["POST", "/ipg/v1x/b2bPayment/", 201],
  reversal: ["PUT", "/ipg/v1x/reversal/", 201],
  status: ["GET", "/ipg/v1x/queryTransactionStatus/", 200],
};

function dieUsage(msg) {
  console.log(`FAIL setup: ${msg}`);
  console.log("0 passed, 1 failed");
  process.exit(2);
}

function isLoopbackHost(hostname) {
  if (!hostname) return false;
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost") return true;
  if (net.isIPv4(h)) return h.split(".")[0] === "127";
  if (net.isIPv6(h)) return h === "::1" || h === "0:0:0:0:0:0:0:1";
  return false;
}

if (!HOST || !API_KEY || !PUBLIC_KEY) dieUsage("MPESA_HOST, MPESA_API_KEY and MPESA_PUBLIC_KEY must all be set");
if (!(TIMEOUT_S > 0)) dieUsage(`MPESA_TIMEOUT must be a positive number of seconds (got ${process.env.MPESA_TIMEOUT})`);
// The library splits the host on "://" and pastes ":<port><path>" after the rest
// (environment.js fromURL, service.js performRequest), so anything after the host
// name (a port, a slash, a path) would end up inside the URL before the port.
{
  const m = /^(https?):\/\/([^/?#]+)$/.exec(HOST);
  if (!m) dieUsage(`MPESA_HOST must be http://HOST or https://HOST with no path (got ${JSON.stringify(HOST)})`);
  let u;
  try {
    u = new URL(HOST);
  } catch (e) {
    dieUsage(`MPESA_HOST is not a URL: ${e.message}`);
  }
  if (u.port !== "" || /:\d*$/.test(m[2])) {
    dieUsage(`MPESA_HOST must have no port (got ${JSON.stringify(HOST)}): the library appends its per-API port itself; use MPESA_PORTS to change the ports`);
  }
  if (!isLoopbackHost(u.hostname)) dieUsage(`MPESA_HOST must be a loopback address (127.0.0.0/8, localhost, [::1]); got ${JSON.stringify(HOST)}`);
}
{
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(PUBLIC_KEY)) dieUsage("MPESA_PUBLIC_KEY is not valid base64");
  // The same thing the library does on every call (configuration.js
  // generateAccessToken: PEM armour around the one-line base64, then
  // crypto.publicEncrypt), checked once up front for a clear message.
  try {
    crypto.createPublicKey(`-----BEGIN PUBLIC KEY-----\n${PUBLIC_KEY}\n-----END PUBLIC KEY-----`);
  } catch (e) {
    dieUsage(`MPESA_PUBLIC_KEY is base64 but not an RSA public key (SPKI DER): ${e.message}`);
  }
}

const portOverrides = {};
if (PORTS_SPEC) {
  for (let item of PORTS_SPEC.split(",")) {
    item = item.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq).trim();
    const value = eq < 0 ? "" : item.slice(eq + 1).trim();
    if (eq < 0 || !Object.prototype.hasOwnProperty.call(OPCODES, key)) {
      dieUsage(`MPESA_PORTS item ${JSON.stringify(item)}: expected <api>=<port> with <api> one of ${Object.keys(OPCODES).join(", ")}`);
    }
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
      dieUsage(`MPESA_PORTS item ${JSON.stringify(item)}: port must be 1-65535`);
    }
    portOverrides[key] = String(Number(value));
  }
}

// ---------------------------------------------------------------------------
// The library is loaded through its CommonJS entry (`require` -> dist/index.cjs, per
// its package.json "exports"). Its operation table and its axios are fetched from
// the same files it uses, so the patched objects are the ones it reads.
const mpesa = require("@paymentsds/mpesa");
const distDir = path.dirname(require.resolve("@paymentsds/mpesa"));
const constants = require(path.join(distDir, "constants.cjs"));
const axiosPath = require.resolve("axios", { paths: [distDir] });
const axios = require(axiosPath);
const axiosDir = path.dirname(require.resolve("axios/package.json", { paths: [distDir] }));
const buildFullPath = require(path.join(axiosDir, "lib/core/buildFullPath"));
const buildURL = require(path.join(axiosDir, "lib/helpers/buildURL"));

const REAL_PORTS = {};
for (const [k, op] of Object.entries(OPCODES)) if (op) REAL_PORTS[k] = constants.OPERATIONS[op].port;
for (const [key, port] of Object.entries(portOverrides)) {
  const op = OPCODES[key];
  if (!op) {
    console.error(`note: MPESA_PORTS ${key}=${port} ignored: the library has no such operation`);
    continue;
  }
  constants.OPERATIONS[op].port = port;
}
const PORTS = {};
for (const [k, op] of Object.entries(OPCODES)) if (op) PORTS[k] = constants.OPERATIONS[op].port;

// ---------------------------------------------------------------------------
// Wire tap: the library throws away the HTTP body fields it does not map (e.g.
// output_ResponseTransactionStatus) and, on errors, everything but status,
// statusText and output_error, so we wrap the axios adapter that its
// `axios(requestData)` call uses. Observation only, apart from the timeout fallback
// and the loopback guard: the request and response pass through unchanged.
const exchanges = [];
const innerAdapter = axios.defaults.adapter;
axios.defaults.adapter = function tappedAdapter(config) {
  const full = buildURL(buildFullPath(config.baseURL, config.url), config.params, config.paramsSerializer);
  const rec = {
    method: String(config.method).toUpperCase(),
    url: full,
    headers: Object.assign({}, config.headers),
    body: config.data === undefined || config.data === null ? null : String(config.data),
    status: null,
    response: null,
  };
  exchanges.push(rec);
  let host;
  try {
    host = new URL(full).hostname;
  } catch (e) {
    host = null;
  }
  if (!isLoopbackHost(host)) {
    rec.networkError = "refused by the flow: not a loopback address";
    return Promise.reject(new Error(`refusing to send ${rec.method} ${full}: not a loopback address`));
  }
  if (!config.timeout) config.timeout = Math.round(TIMEOUT_S * 1000);
  const done = (res) => {
    if (res) {
      rec.status = res.status;
      rec.response = typeof res.data === "string" ? res.data : JSON.stringify(res.data);
    }
    if (TRACE) {
      const hdrs = Object.assign({}, rec.headers);
      if (hdrs.Authorization) {
        const a = String(hdrs.Authorization);
        hdrs.Authorization = `${a.slice(0, 20)}...(${a.length - "Bearer ".length} chars)`;
      }
      console.error(
        `trace ${rec.method} ${rec.url}\n  request headers: ${JSON.stringify(hdrs)}\n  request body: ${rec.body}\n  -> ` +
          (res ? `${rec.status} ${rec.response}` : `no response (${rec.networkError})`)
      );
    }
  };
  return innerAdapter(config).then(
    (res) => {
      done(res);
      return res;
    },
    (e) => {
      if (e && e.response) done(e.response);
      else {
        rec.networkError = (e && (e.code || e.message)) || String(e);
        done(null);
      }
      throw e;
    }
  );
};

const client = new mpesa.Client({
  host: HOST,
  apiKey: API_KEY,
  publicKey: PUBLIC_KEY,
  origin: ORIGIN,
  serviceProviderCode: SHORTCODE,
  initiatorIdentifier: INITIATOR,
  securityCredential: SECURITY_CREDENTIAL,
  timeout: TIMEOUT_S, // seconds (the library multiplies by 1000); its default 0 = none
});

// ---------------------------------------------------------------------------
class StepFailed extends Error {}

function short(v, limit = 400) {
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return text === undefined ? "undefined" : text.length <= limit ? text : text.slice(0, limit - 3) + "...";
}
function newReference() {
  return crypto.randomBytes(16).toString("hex"); // 32 alphanumerics
}
function newTransactionReference() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let s = "T";
  for (let i = 0; i < 11; i++) s += alphabet[crypto.randomInt(alphabet.length)];
  return s; // 12 alphanumerics
}
function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new StepFailed(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
function describeLast(start) {
  const mine = exchanges.slice(start);
  if (!mine.length) return "no HTTP request was made";
  const last = mine[mine.length - 1];
  if (last.status === null) return `last HTTP: ${last.method} ${last.url} -> no response (${last.networkError || "?"})`;
  return `last HTTP: ${last.method} ${last.url} -> ${last.status} ${short(last.response || "", 300)}`;
}
// What the library rejects with: its own error object {response: {status,
// statusText, outputError}} for an HTTP error, a TypeError (from its buildResponse)
// for a network error or timeout, or a thrown Error (validation) before any request.
function describeError(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `library rejected with ${short(e)}`;
}

// The response fields the library's buildResponse reads on a 2xx; all others never
// reach the caller.
const LIBRARY_READS = [
  "output_ResponseCode",
  "output_ResponseDesc",
  "output_ConversationID",
  "output_TransactionID",
  "output_ThirdPartyReference",
];

// Checks one library call: exactly one request to the right port/path/method, the
// expected HTTP status, INS-0, the echoed third-party reference, and the output_*
// fields in `require` (read from the raw body). Returns what the ok line shows.
function checkCall(key, start, result, sentReference, { require = [], needTransaction = false } = {}) {
  const [method, p, wantStatus] = EXPECTED[key];
  const mine = exchanges.slice(start);
  if (mine.length !== 1) {
    throw new StepFailed(
      `expected the library to make exactly 1 request, saw ${mine.length}: ` + mine.map((r) => `${r.method} ${r.url}`).join(", ")
    );
  }
  const rec = mine[0];
  const wantURL = `${HOST}:${PORTS[key]}${p}`;
  if (rec.url.split("?")[0] !== wantURL) throw new StepFailed(`request went to ${rec.url}, expected ${wantURL}`);
  if (rec.method !== method) throw new StepFailed(`request method ${rec.method}, expected ${method}`);
  if (rec.status !== wantStatus) throw new StepFailed(`HTTP ${rec.status} (expected ${wantStatus}): ${short(rec.response || "", 300)}`);
  let raw;
  try {
    raw = JSON.parse(rec.response);
  } catch (e) {
    throw new StepFailed(`answered non-JSON: ${short(rec.response || "", 300)}`);
  }
  if (!raw || typeof raw !== "object") throw new StepFailed(`answered a JSON ${typeof raw}, not an object: ${short(rec.response)}`);
  if (!result || !result.response) throw new StepFailed(`library resolved with ${short(result)}`);
  if (result.response.status !== wantStatus) throw new StepFailed(`library reports status ${result.response.status}: ${short(result)}`);
  if (result.response.code !== "INS-0") {
    throw new StepFailed(`output_ResponseCode is ${JSON.stringify(result.response.code)} (${JSON.stringify(result.response.desc)}): ${short(raw)}`);
  }
  if (result.reference !== sentReference) {
    throw new StepFailed(`output_ThirdPartyReference ${JSON.stringify(result.reference)} does not echo ${JSON.stringify(sentReference)}: ${short(raw)}`);
  }
  if (typeof result.conversation !== "string" || !result.conversation) {
    throw new StepFailed(`output_ConversationID missing or empty: ${short(raw)}`);
  }
  if (needTransaction && (typeof result.transaction !== "string" || !result.transaction || result.transaction === "N/A")) {
    throw new StepFailed(`output_TransactionID missing or empty (${JSON.stringify(result.transaction)}): ${short(raw)}`);
  }
  for (const field of require) {
    const v = raw[field];
    if (typeof v !== "string" || !v || v === "N/A") throw new StepFailed(`${field} missing or empty (${JSON.stringify(v)}): ${short(raw)}`);
  }
  const rawOnly = {};
  for (const [k, v] of Object.entries(raw)) if (!LIBRARY_READS.includes(k)) rawOnly[k] = v;
  return { http: rec.status, library: result, raw_only: rawOnly };
}

// ---------------------------------------------------------------------------
const state = {};
const steps = [];
function step(name, needs, fn) {
  steps.push({ name, needs, fn });
}

step("c2b", [], async (start) => {
  const reference = newReference();
  const result = await client.receive({
    from: MSISDN,
    amount: AMOUNT,
    transaction: newTransactionReference(),
    reference,
    // "to" (input_ServiceProviderCode) is filled from serviceProviderCode
  });
  const shown = checkCall("c2b", start, result, reference, { needTransaction: true });
  state.c2b = { transaction: result.transaction, reference };
  return shown;
});

step("b2c", [], async (start) => {
  const reference = newReference();
  // Client.send picks B2C because "to" matches the library's phone-number pattern.
  const result = await client.send({ to: MSISDN, amount: AMOUNT, transaction: newTransactionReference(), reference });
  return checkCall("b2c", start, result, reference, { needTransaction: true });
});

step("b2b", [], async (start) => {
  const reference = newReference();
  // Client.send picks B2B because "to" matches the 5-6 digit short-code pattern.
  const result = await client.send({ to: RECEIVER, amount: AMOUNT, transaction: newTransactionReference(), reference });
  return checkCall("b2b", start, result, reference, { needTransaction: true });
});

step("status", ["c2b"], async (start) => {
  const reference = newReference();
  const result = await client.query({ subject: state.c2b.transaction, reference });
  return checkCall("status", start, result, reference, { require: ["output_ResponseTransactionStatus"] });
});

step("reversal", ["c2b"], async (start) => {
  const reference = newReference();
  const result = await client.revert({
    transaction: state.c2b.transaction,
    amount: AMOUNT, // required by this library (sent as input_Amount, not input_ReversalAmount)
    reference,
    // initiatorIdentifier, securityCredential and "to" come from the config
  });
  return checkCall("reversal", start, result, reference, { needTransaction: true });
});

// ---------------------------------------------------------------------------
async function main() {
  if (Object.keys(portOverrides).length) {
    console.error(`note: ports ${JSON.stringify(PORTS)} (library defaults ${JSON.stringify(REAL_PORTS)})`);
  }
  let passed = 0;
  let failed = 0;
  const ok = new Set();
  for (const s of steps) {
    const missing = s.needs.filter((n) => !ok.has(n));
    if (missing.length) {
      failed++;
      console.log(`FAIL ${s.name}: skipped, needs the result of ${missing.join(", ")}`);
      continue;
    }
    const start = exchanges.length;
    try {
      // The checks count requests from `start`; each step makes its call first.
      const shown = await withTimeout(
        Promise.resolve().then(() => s.fn(start)),
        STEP_TIMEOUT_MS,
        s.name
      );
      passed++;
      ok.add(s.name);
      console.log(`ok ${s.name}: ${short(shown, 600)}`);
    } catch (e) {
      failed++;
      if (e instanceof StepFailed) console.log(`FAIL ${s.name}: ${e.message}`);
      else console.log(`FAIL ${s.name}: ${describeError(e)} (${describeLast(start)})`);
    }
  }
  console.log("skip name: @paymentsds/mpesa 0.1.0-alpha-9 has no customer-name query (no queryCustomerName operation)");
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
