#!/usr/bin/env node
// Compatibility flow: the published npm client `mtn-momo` (sparkplug, pinned in
// package.json) driven against a running Mkoba server.
//
// Env:
//   MOMO_BASE_URL        e.g. http://127.0.0.1:8080 (no product prefix; the library
//                        appends /collection/... and /v1_0/apiuser itself)
//   MOMO_COLLECTION_KEY  collection primary subscription key
//   MOMO_CALLBACK_HOST   providerCallbackHost for the API user (default 127.0.0.1)
//   MOMO_CALLBACK        "0" to skip the X-Callback-Url request + callback check
//   MOMO_TRACE           "1" to print every HTTP exchange the library makes
//
// Prints `ok <step>` per passed step, `FAIL <step>: ...` per failure, and a final
// `N passed, M failed` line. Exit 0 only if nothing failed.
"use strict";

const http = require("http");
const path = require("path");

// The target is always a local server: never let axios pick up a proxy from the env
// (axios 0.21 honours http_proxy/HTTP_PROXY on its own).
for (const k of ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"]) delete process.env[k];

// With MOMO_CONNECT_TO (host:port of `mkoba serve --tls`) the library keeps its own
// default base URL, https://sandbox.momodeveloper.mtn.com: connect-to.js (preloaded by
// run.sh) opens that name's TLS connections to the server, as a hosts-file line would,
// and NODE_EXTRA_CA_CERTS trusts the server's local CA.
const CONNECT_TO = process.env.MOMO_CONNECT_TO;
const LIBRARY_DEFAULT_BASE_URL = "https://sandbox.momodeveloper.mtn.com";
const BASE_URL = CONNECT_TO ? undefined : process.env.MOMO_BASE_URL;
const KEY = process.env.MOMO_COLLECTION_KEY;
const CALLBACK_HOST = process.env.MOMO_CALLBACK_HOST || "127.0.0.1";
const USE_CALLBACK = process.env.MOMO_CALLBACK !== "0";
const TRACE = process.env.MOMO_TRACE === "1";
if ((!BASE_URL && !CONNECT_TO) || !KEY) {
  console.error("MOMO_BASE_URL (or MOMO_CONNECT_TO) and MOMO_COLLECTION_KEY must be set");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const SUCCESS_MSISDN = "256774290781";
const FAIL_MSISDN = "46733123451"; // sandbox test number -> FAILED / APPROVAL_REJECTED
const POLL_LIMIT_MS = 10000;
const POLL_EVERY_MS = 250;
const STEP_TIMEOUT_MS = 20000;

// ---------------------------------------------------------------------------
// Wire tap: the library throws away the HTTP status and body when it maps errors
// (lib/errors.js handleError), so for diagnostics we wrap the axios adapter that
// the library's own axios instances inherit. Observation only: the request and
// response pass through unchanged.
const momoDir = path.dirname(require.resolve("mtn-momo/package.json"));
const axios = require(require.resolve("axios", { paths: [momoDir] }));
const exchanges = [];
const innerAdapter = axios.defaults.adapter;
axios.defaults.adapter = function tappedAdapter(config) {
  const rec = {
    method: String(config.method).toUpperCase(),
    url: (config.baseURL ? config.baseURL.replace(/\/+$/, "") + "/" + config.url.replace(/^\/+/, "") : config.url),
    path: config.url,
    headers: Object.assign({}, config.headers),
    body: config.data === undefined || config.data === null ? "" : String(config.data),
  };
  exchanges.push(rec);
  const done = (res) => {
    if (res) {
      rec.status = res.status;
      rec.responseBody = typeof res.data === "string" ? res.data : JSON.stringify(res.data);
    }
    if (TRACE) console.log("  wire:", JSON.stringify(rec));
  };
  return innerAdapter(config).then(
    (res) => { done(res); return res; },
    (e) => { if (e && e.response) done(e.response); else { rec.networkError = e && e.message; done(null); } throw e; }
  );
};

const momo = require("mtn-momo");
const { authorizeCollections } = require("mtn-momo/lib/auth");

// ---------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}
function show(v) {
  return JSON.stringify(v);
}
function describeError(e) {
  let s = e && e.name ? `${e.name}: ${e.message || "(no message)"}` : String(e);
  if (e && e.transaction) s += ` transaction=${show(e.transaction)}`;
  return s;
}
function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

const state = {};
const steps = [];
function step(name, title, needs, fn) {
  steps.push({ name, title, needs, fn });
}

// Poll getTransaction while it reports PENDING (or CREATED). Resolves with the
// final transaction, or rejects with whatever the library threw (FAILED becomes a
// typed MtnMoMoError with .transaction).
async function pollTransaction(collections, ref) {
  const deadline = Date.now() + POLL_LIMIT_MS;
  let last;
  for (;;) {
    last = await collections.getTransaction(ref);
    if (last.status !== "PENDING" && last.status !== "CREATED") return last;
    if (Date.now() > deadline) throw new Error(`still ${last.status} after ${POLL_LIMIT_MS} ms: ${show(last)}`);
    await sleep(POLL_EVERY_MS);
  }
}

// ---------------------------------------------------------------------------
// Callback listener (for the X-Callback-Url on the success request-to-pay).
const callbacks = [];
let callbackServer = null;
async function startCallbackServer() {
  callbackServer = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      callbacks.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "Content-Length": "0" });
      res.end();
    });
  });
  await new Promise((resolve, reject) => {
    callbackServer.once("error", reject);
    callbackServer.listen(0, CALLBACK_HOST, resolve);
  });
  const host = CALLBACK_HOST.includes(":") ? `[${CALLBACK_HOST}]` : CALLBACK_HOST;
  return `http://${host}:${callbackServer.address().port}/mtn-momo-compat/callback`;
}

// ---------------------------------------------------------------------------
const { Users, Collections } = momo.create(
  Object.assign(
    { environment: "sandbox", callbackHost: CALLBACK_HOST },
    // Without a baseUrl the library uses its own default (MOMO_CONNECT_TO).
    BASE_URL ? { baseUrl: BASE_URL } : {},
  ),
);

step("apiuser", "Users.create -> POST /v1_0/apiuser", [], async () => {
  const users = Users({ primaryKey: KEY });
  state.userId = await users.create(CALLBACK_HOST);
  check(UUID4.test(state.userId), `user id is not a UUID v4: ${state.userId}`);
  state.users = users;
});

step("apikey", "Users.login -> POST /v1_0/apiuser/{id}/apikey", ["apiuser"], async () => {
  const creds = await state.users.login(state.userId);
  check(creds && typeof creds === "object", `apikey response is not a JSON object: ${show(creds)}`);
  check(typeof creds.apiKey === "string" && /^[0-9a-f]{32}$/.test(creds.apiKey), `apiKey is not 32 lower-case hex: ${show(creds)}`);
  state.apiKey = creds.apiKey;
});

step("client", "Collections({primaryKey, userId, userSecret})", ["apikey"], async () => {
  state.productConfig = { primaryKey: KEY, userId: state.userId, userSecret: state.apiKey };
  state.collections = Collections(state.productConfig);
});

step("token", "authorizeCollections -> POST /collection/token/", ["client"], async () => {
  const config = Object.assign({ baseUrl: BASE_URL || LIBRARY_DEFAULT_BASE_URL, environment: "sandbox", callbackHost: CALLBACK_HOST }, state.productConfig);
  const tok = await authorizeCollections(config);
  check(tok && typeof tok.access_token === "string" && tok.access_token.length > 0, `no access_token: ${show(tok)}`);
  // auth.js computes expiry as now + expires_in*1000 - 60000: must be a number > 60
  check(typeof tok.expires_in === "number" && tok.expires_in > 60, `expires_in must be a number > 60: ${show(tok)}`);
  check(typeof tok.token_type === "string", `token_type missing: ${show(tok)}`);
});

const ext = `mkoba-compat-${Date.now()}`;

step("requestToPay", "100 EUR from " + SUCCESS_MSISDN + (USE_CALLBACK ? " with X-Callback-Url" : ""), ["client"], async () => {
  const req = {
    amount: "100",
    currency: "EUR",
    externalId: ext,
    payer: { partyIdType: momo.PayerType.MSISDN, partyId: SUCCESS_MSISDN },
    payerMessage: "mkoba compat test",
    payeeNote: "mtn-momo npm client",
  };
  if (USE_CALLBACK) {
    state.callbackUrl = await startCallbackServer();
    req.callbackUrl = state.callbackUrl;
  }
  state.ref = await state.collections.requestToPay(req);
  check(UUID4.test(state.ref), `reference id is not a UUID v4: ${state.ref}`);
});

step("getTransaction", "poll until SUCCESSFUL", ["requestToPay"], async () => {
  const tx = await pollTransaction(state.collections, state.ref);
  check(tx.status === "SUCCESSFUL", `expected SUCCESSFUL, got ${show(tx)}`);
  check(tx.amount === "100", `amount should be the string "100": ${show(tx)}`);
  check(tx.currency === "EUR", `currency: ${show(tx)}`);
  check(tx.externalId === ext, `externalId: ${show(tx)}`);
  check(tx.payer && tx.payer.partyIdType === "MSISDN" && tx.payer.partyId === SUCCESS_MSISDN, `payer: ${show(tx)}`);
  check(typeof tx.financialTransactionId === "string" && tx.financialTransactionId.length > 0, `financialTransactionId: ${show(tx)}`);
  check(tx.reason === undefined, `SUCCESSFUL must carry no reason: ${show(tx)}`);
});

if (USE_CALLBACK) {
  step("callback", "callback received on X-Callback-Url", ["requestToPay"], async () => {
    const deadline = Date.now() + POLL_LIMIT_MS;
    while (callbacks.length === 0 && Date.now() < deadline) await sleep(100);
    check(callbacks.length > 0, `no callback arrived at ${state.callbackUrl} within ${POLL_LIMIT_MS} ms`);
    const cb = callbacks[0];
    check(cb.method === "POST" || cb.method === "PUT", `callback method ${cb.method}`);
    check(cb.url === "/mtn-momo-compat/callback", `callback path ${cb.url}`);
    let body;
    try { body = JSON.parse(cb.body); } catch (e) { throw new Error(`callback body is not JSON: ${cb.body}`); }
    check(body.status === "SUCCESSFUL" && body.externalId === ext, `callback body: ${cb.body}`);
  });
}

step("getBalance", "GET /collection/v1_0/account/balance", ["client"], async () => {
  const bal = await state.collections.getBalance();
  check(bal && typeof bal.availableBalance === "string", `availableBalance must be a string: ${show(bal)}`);
  check(typeof bal.currency === "string" && /^[A-Z]{3}$/.test(bal.currency), `currency: ${show(bal)}`);
});

step("isPayerActive", SUCCESS_MSISDN + ", default type -> /accountholder/MSISDN/{id}/active", ["client"], async () => {
  // Collections.isPayerActive does NOT lower-case the type (lib/collections.js:96),
  // so the library's default sends the upper-case path segment "MSISDN".
  const res = await state.collections.isPayerActive(SUCCESS_MSISDN);
  check(res && res.result === true, `expected {"result":true}, got ${show(res)}`);
});

step("requestToPay-reject", "100 EUR from " + FAIL_MSISDN, ["client"], async () => {
  state.failRef = await state.collections.requestToPay({
    amount: "100",
    currency: "EUR",
    externalId: ext + "-fail",
    payer: { partyIdType: "MSISDN", partyId: FAIL_MSISDN },
    payerMessage: "mkoba compat test",
    payeeNote: "expect rejection",
  });
  check(UUID4.test(state.failRef), `reference id is not a UUID v4: ${state.failRef}`);
});

step("getTransaction-reject", "ApprovalRejectedError, FAILED/APPROVAL_REJECTED", ["requestToPay-reject"], async () => {
  let tx;
  try {
    tx = await pollTransaction(state.collections, state.failRef);
  } catch (e) {
    check(e instanceof momo.ApprovalRejectedError, `expected ApprovalRejectedError, got ${describeError(e)}`);
    check(e.transaction && e.transaction.status === "FAILED", `error.transaction.status: ${show(e.transaction)}`);
    check(e.transaction.reason === "APPROVAL_REJECTED", `reason must be the bare string "APPROVAL_REJECTED": ${show(e.transaction)}`);
    return;
  }
  throw new Error(`expected the library to reject with ApprovalRejectedError, got ${show(tx)}`);
});

step("getTransaction-unknown", "404 -> ResourceNotFoundError", ["client"], async () => {
  const unknown = "3f1d9c2e-8b7a-4c6d-9e5f-0a1b2c3d4e5f";
  try {
    const tx = await state.collections.getTransaction(unknown);
    throw new Error(`expected ResourceNotFoundError, got ${show(tx)}`);
  } catch (e) {
    check(e instanceof momo.ResourceNotFoundError, `expected ResourceNotFoundError (404 {"code":"RESOURCE_NOT_FOUND"}), got ${describeError(e)}`);
  }
});

step("token-cached", "one POST /collection/token/ for all collections calls", ["token"], async () => {
  // 1 from the explicit token step + 1 from the collections client's refresher
  const n = exchanges.filter((x) => x.method === "POST" && x.path === "/collection/token/").length;
  check(n === 2, `expected 2 token requests (explicit + the client's cached one), saw ${n}`);
});

// ---------------------------------------------------------------------------
async function main() {
  let passed = 0;
  let failed = 0;
  const ok = new Set();
  for (const s of steps) {
    const missing = s.needs.filter((n) => !ok.has(n));
    if (missing.length) {
      failed++;
      console.log(`FAIL ${s.name}: not run (needs ${missing.join(", ")})`);
      continue;
    }
    const before = exchanges.length;
    try {
      await withTimeout(Promise.resolve().then(s.fn), STEP_TIMEOUT_MS, s.name);
      passed++;
      ok.add(s.name);
      console.log(`ok ${s.name} (${s.title})`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${s.name} (${s.title}): ${describeError(e)}`);
      const mine = exchanges.slice(before);
      const last = mine[mine.length - 1];
      if (last) {
        console.log(`  last HTTP exchange: ${last.method} ${last.url} -> ${last.status === undefined ? "no response (" + (last.networkError || "?") + ")" : last.status} body=${show(last.responseBody === undefined ? null : last.responseBody)}`);
        console.log(`  request headers: ${show(last.headers)} body=${show(last.body)}`);
      }
    }
  }
  if (callbackServer) callbackServer.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
