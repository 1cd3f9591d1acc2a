#!/usr/bin/env python3
"""Compatibility flow: the published PyPI client `paymentsds-mpesa` 0.1a10 (import
name `paymentsds.mpesa`, pinned in requirements.txt) driven against a running Mkoba
server that speaks the Vodacom Mozambique "v1x" gateway.

Env:
  MPESA_HOST         scheme + host, NO port and no path, e.g. http://127.0.0.1. The
                     library appends its fixed per-API port (:18352 C2B, :18345 B2C,
                     :18349 B2B, :18354 reversal, :18353 status) and the path itself.
  MPESA_API_KEY      the application's API key
  MPESA_PUBLIC_KEY   the server's public key: base64 of the SPKI DER, one line
  MPESA_PORTS        optional, e.g. c2b=41001,b2c=41002,b2b=41003,reversal=41004,
                     status=41005,name=41006: replaces the library's fixed port for
                     each API named (by editing the library's own operation table
                     DEFAULT_OPERATIONS in place). Unnamed APIs keep the real port.
                     `name` is accepted and ignored (this library has no customer-name
                     query). Without MPESA_PORTS the library's ports are used unchanged.
  MPESA_ORIGIN       optional Origin header value (default "*", the library's default)
  MPESA_SHORTCODE    optional service provider code (default 171717)
  MPESA_MSISDN       optional customer MSISDN (default 258841234567)
  MPESA_RECEIVER     optional B2B receiver party code (default 979797)
  MPESA_TIMEOUT      optional per-request timeout in seconds (default 30)
  MPESA_TRACE        "1" to print every HTTP exchange the library makes (stderr)

The calls are made by the library's own public methods (Client.receive, Client.send
for B2C and B2B, Client.query, Client.revert); nothing here builds a request by hand.
The only changes to the library's behaviour are (1) MPESA_PORTS, when given, and (2)
the library's own `timeout` option, plus a fallback timeout in the wire tap, so a
stuck server fails the flow instead of hanging it.

Prints `ok <step>: <json>` per passed step, `FAIL <step>: ...` per failure and
`skip <step>: ...` for a step the library cannot do, on stdout, then a final
`N passed, M failed` line. Exit status 0 only if nothing failed. Everything the
library prints itself goes to stderr.
"""

import base64
import binascii
import contextlib
import ipaddress
import json
import os
import secrets
import string
import sys
import urllib.parse
import uuid

# The target is always a local server: never let requests route it through a proxy
# picked up from the environment (requests reads these on every call).
for _k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_k, None)

import requests  # noqa: E402  (after the proxy clean-up on purpose)

HOST = os.environ.get("MPESA_HOST", "").strip()
API_KEY = os.environ.get("MPESA_API_KEY", "")
PUBLIC_KEY = "".join(os.environ.get("MPESA_PUBLIC_KEY", "").split())
ORIGIN = os.environ.get("MPESA_ORIGIN") or "*"
SHORTCODE = os.environ.get("MPESA_SHORTCODE") or "171717"
MSISDN = os.environ.get("MPESA_MSISDN") or "258841234567"
RECEIVER = os.environ.get("MPESA_RECEIVER") or "979797"
PORTS_SPEC = os.environ.get("MPESA_PORTS", "").strip()
TIMEOUT = float(os.environ.get("MPESA_TIMEOUT") or "30")
TRACE = os.environ.get("MPESA_TRACE") == "1"

AMOUNT = "10"
INITIATOR = "MkobaInitiator"  # the library validates both with \w+ (prefix match)
SECURITY_CREDENTIAL = "MkobaCredential1"

# flow key -> the library's operation code in constants.DEFAULT_OPERATIONS
OPCODES = {
    "c2b": "C2B_PAYMENT",
    "b2c": "B2C_PAYMENT",
    "b2b": "B2B_PAYMENT",
    "reversal": "REVERSAL",
    "status": "QUERY_TRANSACTION_STATUS",
    "name": None,  # the gateway's queryCustomerName (19323): not in this library
}
# What the server must answer for a successful synchronous call (reference §6.2:
# 201 for the POST/PUT money calls, 200 for the GETs). The library itself accepts
# any 2xx (service.py perform_request); the flow is stricter.
EXPECTED = {
    "c2b": ("POST", "/ipg/v1x/c2bPayment/singleStage/", 201),
    "b2c": ("POST", "/ipg/v1x/b2cPayment/", 201),
    "b2b": ("POST", "/ipg/v1x/b2bPayment/", 201),
    "reversal": ("PUT", "/ipg/v1x/reversal/", 201),
    "status": ("GET", "/ipg/v1x/queryTransactionStatus/", 200),
}


def die_usage(msg):
    print(f"FAIL setup: {msg}")
    print("0 passed, 1 failed")
    sys.exit(2)


def is_loopback_host(hostname):
    if hostname is None:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


if not HOST or not API_KEY or not PUBLIC_KEY:
    die_usage("MPESA_HOST, MPESA_API_KEY and MPESA_PUBLIC_KEY must all be set")
# The library splits the host on "://" and pastes ":<port><path>" after the rest
# (environment.py from_url, service.py perform_request), so anything after the host
# name (a port, a slash, a path) would end up inside the URL before the port.
_parsed_host = urllib.parse.urlsplit(HOST)
if _parsed_host.scheme not in ("http", "https") or HOST.count("://") != 1:
    die_usage(f"MPESA_HOST must be http://HOST or https://HOST (got {HOST!r})")
try:
    _host_port = _parsed_host.port
except ValueError:
    _host_port = "invalid"
if _host_port is not None or _parsed_host.path or _parsed_host.query or _parsed_host.fragment:
    die_usage(
        f"MPESA_HOST must have no port and no path (got {HOST!r}): the library appends "
        "its per-API port itself; use MPESA_PORTS to change the ports"
    )
if not is_loopback_host(_parsed_host.hostname):
    die_usage(f"MPESA_HOST must be a loopback address (127.0.0.0/8, localhost, [::1]); got {HOST!r}")
try:
    _der = base64.b64decode(PUBLIC_KEY, validate=True)
except (binascii.Error, ValueError) as exc:
    die_usage(f"MPESA_PUBLIC_KEY is not valid base64: {exc}")
try:
    # The same import the library does on every call (configuration.py
    # generate_access_token: PEM armour around the one-line base64, then
    # pycryptodome RSA.importKey), checked once up front for a clear message.
    from Crypto.PublicKey import RSA

    RSA.importKey("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----".format(PUBLIC_KEY).encode())
except (ValueError, IndexError, TypeError) as exc:
    die_usage(f"MPESA_PUBLIC_KEY is base64 but not an RSA public key (SPKI DER): {exc}")

port_overrides = {}
if PORTS_SPEC:
    for item in PORTS_SPEC.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        value = value.strip()
        if not sep or key not in OPCODES:
            die_usage(f"MPESA_PORTS item {item!r}: expected <api>=<port> with <api> one of {', '.join(OPCODES)}")
        if not value.isdigit() or not 0 < int(value) < 65536:
            die_usage(f"MPESA_PORTS item {item!r}: port must be 1-65535")
        port_overrides[key] = str(int(value))


# ---------------------------------------------------------------------------
# Wire tap. The library calls requests.get/post/put, which all end in
# requests.Session.send. Wrapping send lets the flow see each HTTP status and the
# raw body (the library's Response object keeps neither, and drops
# output_TransactionID, see NOTES.md). Observation only, apart from the timeout
# default and the loopback guard: the request and response pass through unchanged.
exchanges = []
_inner_send = requests.Session.send


class NonLoopbackRequest(Exception):
    pass


def _tapped_send(self, request, **kwargs):
    target = urllib.parse.urlsplit(request.url)
    if not is_loopback_host(target.hostname):
        raise NonLoopbackRequest(f"refusing to send {request.method} {request.url}: not a loopback address")
    if kwargs.get("timeout") is None:
        kwargs["timeout"] = TIMEOUT
    rec = {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "body": request.body.decode("utf-8", "replace") if isinstance(request.body, bytes) else request.body,
        "status": None,
        "response": None,
    }
    exchanges.append(rec)
    try:
        resp = _inner_send(self, request, **kwargs)
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"
        if TRACE:
            print(f"trace {rec['method']} {rec['url']}\n  -> no response: {rec['error']}", file=sys.stderr)
        raise
    rec["status"] = resp.status_code
    rec["response"] = resp.text
    if TRACE:
        hdrs = dict(rec["headers"])
        if "Authorization" in hdrs:
            auth = hdrs["Authorization"]
            hdrs["Authorization"] = f"{auth[:20]}...({len(auth) - len('Bearer ')} chars)"
        print(
            f"trace {rec['method']} {rec['url']}\n  request headers: {json.dumps(hdrs)}\n"
            f"  request body: {rec['body']}\n  -> {resp.status_code} {rec['response']}",
            file=sys.stderr,
        )
    return resp


requests.Session.send = _tapped_send


# ---------------------------------------------------------------------------
# The client.
from paymentsds.mpesa import Client  # noqa: E402
from paymentsds.mpesa import constants as mpesa_constants  # noqa: E402

# service.py does `from .constants import *`, so its DEFAULT_OPERATIONS is the very
# same dict object: editing the entries in place changes the ports the library uses.
REAL_PORTS = {k: mpesa_constants.DEFAULT_OPERATIONS[op]["port"] for k, op in OPCODES.items() if op}
for key, port in port_overrides.items():
    op = OPCODES[key]
    if op is None:
        print(f"note: MPESA_PORTS {key}={port} ignored: the library has no such operation", file=sys.stderr)
        continue
    mpesa_constants.DEFAULT_OPERATIONS[op]["port"] = port
PORTS = {k: mpesa_constants.DEFAULT_OPERATIONS[op]["port"] for k, op in OPCODES.items() if op}

client = Client(
    host=HOST,
    api_key=API_KEY,
    public_key=PUBLIC_KEY,
    origin=ORIGIN,
    service_provider_code=SHORTCODE,
    initiator_identifier=INITIATOR,
    security_credential=SECURITY_CREDENTIAL,
    timeout=TIMEOUT,  # seconds; the library's default 0 means "no timeout"
)


# ---------------------------------------------------------------------------
class StepFailed(Exception):
    pass


def short(obj, limit=400):
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def new_reference():
    """Third-party reference: 32 random alphanumerics (hex)."""
    return uuid.uuid4().hex


def new_transaction_reference():
    """Transaction reference: 'T' + 11 random upper-case alphanumerics (12 chars)."""
    alphabet = string.ascii_uppercase + string.digits
    return "T" + "".join(secrets.choice(alphabet) for _ in range(11))


def describe_last(start):
    new = exchanges[start:]
    if not new:
        return "no HTTP request was made"
    last = new[-1]
    if last["status"] is None:
        return f"last HTTP: {last['method']} {last['url']} -> no response"
    return f"last HTTP: {last['method']} {last['url']} -> {last['status']} {short(last['response'] or '', 300)}"


# The four response fields the library's Response class reads (response.py); all
# others never reach the caller.
LIBRARY_READS = ("output_ResponseCode", "output_ResponseDesc", "output_ConversationID", "output_ThirdPartyReference")


def library_result(result):
    """The library's Response object as plain data (what a user of it sees)."""
    status = getattr(result, "status", None)
    return {
        "success": getattr(result, "success", None),
        "code": getattr(status, "code", None),
        "description": getattr(status, "description", None),
        "data": getattr(result, "data", None),
    }


def check_call(key, start, result, sent_reference, require=()):
    """Checks one library call: exactly one request to the right port/path/method,
    the expected HTTP status, INS-0, the echoed third-party reference, and the
    raw output_* fields in `require`. Returns the raw JSON body."""
    method, path, want_status = EXPECTED[key]
    new = exchanges[start:]
    if len(new) != 1:
        raise StepFailed(
            f"expected the library to make exactly 1 request, saw {len(new)}: "
            + ", ".join(f"{r['method']} {r['url']}" for r in new)
        )
    rec = new[0]
    want_url = f"{HOST}:{PORTS[key]}{path}"
    url_no_query = rec["url"].split("?", 1)[0]
    if url_no_query != want_url:
        raise StepFailed(f"request went to {rec['url']}, expected {want_url}")
    if rec["method"] != method:
        raise StepFailed(f"request method {rec['method']}, expected {method}")
    if rec["status"] != want_status:
        raise StepFailed(f"HTTP {rec['status']} (expected {want_status}): {short(rec['response'] or '', 300)}")
    try:
        raw = json.loads(rec["response"])
    except (TypeError, ValueError):
        raise StepFailed(f"answered non-JSON: {short(rec['response'] or '', 300)}")
    lib = library_result(result)
    if lib["success"] is not True:
        raise StepFailed(f"library reports success={lib['success']!r}: {short(lib)}")
    if lib["code"] != "INS-0":
        raise StepFailed(f"output_ResponseCode is {lib['code']!r} ({lib['description']!r}): {short(raw)}")
    data = lib["data"] or {}
    if data.get("reference") != sent_reference:
        raise StepFailed(
            f"output_ThirdPartyReference {data.get('reference')!r} does not echo {sent_reference!r}: {short(raw)}"
        )
    if not data.get("conversation"):
        raise StepFailed(f"output_ConversationID missing or empty: {short(raw)}")
    for field in require:
        value = raw.get(field)
        if not isinstance(value, str) or not value or value == "N/A":
            raise StepFailed(f"{field} missing or empty ({value!r}): {short(raw)}")
    # Shown on the ok line: the HTTP status, what the library hands its caller, and
    # the response fields the library does not expose (output_TransactionID,
    # output_ResponseTransactionStatus, ...), which the flow reads from the tap.
    hidden = {k: v for k, v in raw.items() if k not in LIBRARY_READS}
    return {"http": rec["status"], "library": lib, "raw_only": hidden, "raw": raw}


# ---------------------------------------------------------------------------
state = {}
passed = 0
failed = 0


def run_step(name, fn, needs=()):
    global passed, failed
    missing = [n for n in needs if n not in state]
    if missing:
        failed += 1
        print(f"FAIL {name}: skipped, needs the result of {', '.join(missing)}")
        return
    start = len(exchanges)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the library prints missing properties
            shown = fn(start)
    except StepFailed as exc:
        failed += 1
        print(f"FAIL {name}: {exc}")
        return
    except Exception as exc:  # the library raises bare exceptions (KeyError, JSONDecodeError, ValidationError, ...)
        failed += 1
        print(f"FAIL {name}: {type(exc).__name__}: {' '.join(str(exc).split())} ({describe_last(start)})")
        return
    passed += 1
    if isinstance(shown, dict):
        shown = {k: v for k, v in shown.items() if k != "raw"}
    print(f"ok {name}: {short(shown, 600)}")


def step_c2b(start):
    reference = new_reference()
    result = client.receive({
        "from": MSISDN,
        "amount": AMOUNT,
        "transaction": new_transaction_reference(),
        "reference": reference,
        # "to" (input_ServiceProviderCode) is filled from service_provider_code
    })
    shown = check_call("c2b", start, result, reference, require=("output_TransactionID",))
    state["c2b"] = {"transaction_id": shown["raw"]["output_TransactionID"], "reference": reference}
    return shown


def step_b2c(start):
    reference = new_reference()
    # Client.send picks B2C because "to" matches the library's phone-number pattern.
    result = client.send({
        "to": MSISDN,
        "amount": AMOUNT,
        "transaction": new_transaction_reference(),
        "reference": reference,
    })
    return check_call("b2c", start, result, reference, require=("output_TransactionID",))


def step_b2b(start):
    reference = new_reference()
    # Client.send picks B2B because "to" matches the 5-6 digit short-code pattern.
    result = client.send({
        "to": RECEIVER,
        "amount": AMOUNT,
        "transaction": new_transaction_reference(),
        "reference": reference,
    })
    return check_call("b2b", start, result, reference, require=("output_TransactionID",))


def step_status(start):
    reference = new_reference()
    result = client.query({
        "subject": state["c2b"]["transaction_id"],
        "reference": reference,
    })
    return check_call("status", start, result, reference, require=("output_ResponseTransactionStatus",))


def step_reversal(start):
    reference = new_reference()
    result = client.revert({
        "transaction": state["c2b"]["transaction_id"],
        "amount": AMOUNT,  # required by this library (sent as input_ReversalAmount)
        "reference": reference,
        # initiator_identifier, security_credential and "to" come from the config
    })
    return check_call("reversal", start, result, reference, require=("output_TransactionID",))


if port_overrides:
    print(f"note: ports {json.dumps(PORTS)} (library defaults {json.dumps(REAL_PORTS)})", file=sys.stderr)

run_step("c2b", step_c2b)
run_step("b2c", step_b2c)
run_step("b2b", step_b2b)
run_step("status", step_status, needs=("c2b",))
run_step("reversal", step_reversal, needs=("c2b",))
print("skip name: paymentsds-mpesa 0.1a10 has no customer-name query (no queryCustomerName operation)")

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
