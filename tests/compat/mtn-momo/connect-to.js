// Preloaded (`node --require ./connect-to.js`) when MOMO_CONNECT_TO is set: TLS
// connections to the MoMo platform's public host names on port 443 are opened to
// MOMO_CONNECT_TO (host:port of `mkoba serve --tls`) instead, keeping the name for SNI and
// certificate verification: what a hosts-file line does, for this process only and
// without root. The client library itself is not touched.
"use strict";
const tls = require("tls");

const [host, port] = process.env.MOMO_CONNECT_TO.split(/:(?=\d+$)/);
const NAMES = new Set([
  "sandbox.momodeveloper.mtn.com",
  "proxy.momoapi.mtn.com",
  "ericssonbasicapi2.azure-api.net",
]);
const connect = tls.connect;
tls.connect = function (...args) {
  const options = args[0];
  if (options && typeof options === "object" && NAMES.has(options.host) && Number(options.port || 443) === 443) {
    args[0] = Object.assign({}, options, {
      host,
      port: Number(port),
      servername: options.servername || options.host,
    });
  }
  return connect.apply(this, args);
};
