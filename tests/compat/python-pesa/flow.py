#!/usr/bin/env python3
"""Compatibility flow: the published PyPI client `python-pesa` 0.7 (import name
`pypesa`, pinned in requirements.txt) driven against a running Mkoba server.

Env:
  MPESA_BASE_URL     e.g. http://127.0.0.1:8080 (scheme + host + port, no path; the
                     flow appends /sandbox/ipg/v2/vodacomTZN/<api>/ itself)
  MPESA_API_KEY      the application's API key (32 characters)
  MPESA_PUBLIC_KEY   the server's public key: base64 of the SPKI DER, one line
  MPESA_ORIGIN       optional Origin header value (the library's default is "*")
  MPESA_TIMEOUT      optional per-request timeout in seconds (default 30)
  MPESA_TRACE        "1" to print every HTTP exchange the library makes (stderr)
  MPESA_CONNECT_TO   instead of MPESA_BASE_URL: host:port of a server speaking HTTPS
                     (`mkoba serve --tls`). The library's own https://openapi.m-pesa.com
                     URLs are then used unchanged; only the TCP connection for
                     openapi.m-pesa.com is opened to this address (urllib3's connection
                     hook, a name override like a hosts-file line), and the certificate is
                     verified as for openapi.m-pesa.com against REQUESTS_CA_BUNDLE.

The calls themselves are made by the library's own public methods
(get_session_id, customer_to_bussiness, bussiness_to_customer, payment_reversal,
query_transaction_status); nothing here builds a request by hand. The only
changes to the library's behaviour are (1) its hard-coded https://openapi.m-pesa.com
URLs are replaced by an object with the same attribute names pointing at
MPESA_BASE_URL, and (2) a request timeout is supplied when the library gives none
(it never does), so a stuck server fails the flow instead of hanging it.

Prints `ok <step>: <json>` per passed step and `FAIL <step>: ...` per failure on
stdout, then a final `N passed, M failed` line. Exit status 0 only if nothing
failed. Everything the library prints itself goes to stderr.
"""

import base64
import binascii
import contextlib
import importlib
import json
import os
import sys
import uuid

# The target is always a local server: never let requests route it through a proxy
# picked up from the environment (requests reads these on every call).
for _k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_k, None)

import requests  # noqa: E402  (after the proxy clean-up on purpose)

BASE_URL = os.environ.get("MPESA_BASE_URL", "").rstrip("/")
CONNECT_TO = os.environ.get("MPESA_CONNECT_TO", "")
if CONNECT_TO:
    # The library's hard-coded host, as the real platform serves it.
    BASE_URL = "https://openapi.m-pesa.com:443"
API_KEY = os.environ.get("MPESA_API_KEY", "")
PUBLIC_KEY = "".join(os.environ.get("MPESA_PUBLIC_KEY", "").split())
ORIGIN = os.environ.get("MPESA_ORIGIN")
TIMEOUT = float(os.environ.get("MPESA_TIMEOUT", "30"))
TRACE = os.environ.get("MPESA_TRACE") == "1"

MARKET_PATH = "/sandbox/ipg/v2/vodacomTZN"
COUNTRY = "TZN"
CURRENCY = "TZS"
MSISDN = "000000000001"
SHORTCODE = "000000"
AMOUNT = "10"

# HTTP status the reference (§4, §5) gives for a successful synchronous call. The
# library itself never looks at the status; the flow does, through the wire tap.
EXPECTED_STATUS = {
    "getSession": 200,
    "c2b": 201,
    "b2c": 201,
    "reversal": 201,
    "query": 200,
}


def die_usage(msg):
    print(f"FAIL setup: {msg}")
    print("0 passed, 1 failed")
    sys.exit(2)


if not BASE_URL or not API_KEY or not PUBLIC_KEY:
    die_usage("MPESA_BASE_URL, MPESA_API_KEY and MPESA_PUBLIC_KEY must all be set")
if not BASE_URL.startswith(("http://", "https://")):
    die_usage(f"MPESA_BASE_URL must start with http:// or https:// (got {BASE_URL!r})")
try:
    _der = base64.b64decode(PUBLIC_KEY, validate=True)
except (binascii.Error, ValueError) as exc:
    die_usage(f"MPESA_PUBLIC_KEY is not valid base64: {exc}")
try:
    # The same import the library does (pycryptodome RSA.importKey on the DER). The
    # library swallows this error, and then recurses get_session_id -> default_headers
    # -> get_session_id until RecursionError, sending ~1000 getSession requests with
    # "Authorization: Bearer None" while unwinding (NOTES.md §6), so check up front.
    from Crypto.PublicKey import RSA

    RSA.importKey(_der)
except (ValueError, IndexError, TypeError) as exc:
    die_usage(f"MPESA_PUBLIC_KEY is base64 but not an RSA public key (SPKI DER): {exc}")


# ---------------------------------------------------------------------------
# Wire tap. The library calls requests.get/post/put, which all end in
# requests.Session.send. Wrapping send lets the flow see each HTTP status and body
# (the library discards the status, and get_session_id returns only the session ID).
# Observation only, apart from the timeout default: the request and response pass
# through unchanged.
exchanges = []
_inner_send = requests.Session.send


def _tapped_send(self, request, **kwargs):
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
    resp = _inner_send(self, request, **kwargs)
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
# The client. `import pypesa` replaces its own module object by the class Mpesa
# (`sys.modules[__name__] = Mpesa` at the end of pypesa/__init__.py), so the name
# `pypesa` *is* the client class, and its submodule must be fetched from
# sys.modules rather than as an attribute.
with contextlib.redirect_stdout(sys.stderr):  # its constructor prints "<Using Sandbox Urls>"
    import pypesa

    service_urls = importlib.import_module("pypesa.service_urls")


class LocalUrls(service_urls.sandbox):
    """The library's sandbox URL set, re-pointed at MPESA_BASE_URL.

    Subclassing keeps the class-level required-field sets (re_customer_to_bussiness,
    ...) that the library's verify_query reads from the same object.
    """

    def __init__(self, base):
        root = base + MARKET_PATH
        self.session_id = root + "/getSession/"
        self.single_stage_c2b = root + "/c2bPayment/singleStage/"
        self.single_stage_b2c = root + "/b2cPayment/"
        self.single_stage_b2b = root + "/b2bPayment/"
        self.payment_reversal = root + "/reversal/"
        self.transaction_status = root + "/queryTransactionStatus/"
        self.direct_debit = root + "/directDebitCreation/"
        self.direct_debit_payment = root + "/directDebitPayment/"

    def __str__(self):
        return f"<Using Mkoba Urls at {BASE_URL}>"

    __repr__ = __str__


with contextlib.redirect_stdout(sys.stderr):
    mpesa = pypesa()  # environment="sandbox" by default
if CONNECT_TO:
    # Unmodified URLs: point the name at the server, as /etc/hosts would (the library's
    # sandbox reversal URL says port 433, a typo of 443: both lead to the server).
    import urllib3.util.connection as _conn

    _target_host, _target_port = CONNECT_TO.rsplit(":", 1)
    _create = _conn.create_connection

    def _connect(address, *args, **kwargs):
        host, port = address
        if host == "openapi.m-pesa.com" and port in (443, 433):
            address = (_target_host, int(_target_port))
        return _create(address, *args, **kwargs)

    _conn.create_connection = _connect
    print(f"using the library's own URLs: {mpesa.urls.session_id}", file=sys.stderr)
else:
    # Mpesa has __slots__ (no instance __dict__), but "urls" is one of the slots, so
    # the instance attribute can be replaced.
    mpesa.urls = LocalUrls(BASE_URL)
mpesa.api_key = API_KEY  # public property setters; with both set the library
mpesa.public_key = PUBLIC_KEY  # never looks for keys.json
if ORIGIN is not None:
    mpesa.origin_address = ORIGIN

# Note on sleeping: python-pesa 0.7 does not sleep anywhere (no time.sleep, no
# "session takes 30 s to go live" wait); it uses each new session ID at once. So
# there is nothing to monkeypatch, but the server must accept a session
# immediately after issuing it (activation delay 0).


# ---------------------------------------------------------------------------
class StepFailed(Exception):
    pass


def short(obj, limit=400):
    text = json.dumps(obj, separators=(",", ":"), sort_keys=False) if not isinstance(obj, str) else obj
    return text if len(text) <= limit else text[: limit - 3] + "..."


def new_tpcid():
    return uuid.uuid4().hex


def exchanges_since(start):
    return exchanges[start:]


def describe_last(start):
    new = exchanges_since(start)
    if not new:
        return "no HTTP request was made"
    last = new[-1]
    return f"last HTTP: {last['method']} {last['url']} -> {last['status']} {short(last['response'] or '', 300)}"


def check_exchange(rec, step, path_suffix, method):
    if CONNECT_TO:
        # The library's own URLs (some name port 443, one says 433, one none).
        from urllib.parse import urlsplit

        parts = urlsplit(rec["url"])
        if parts.scheme != "https" or parts.hostname != "openapi.m-pesa.com" \
                or not parts.path.startswith(MARKET_PATH) or not parts.path.endswith(path_suffix):
            raise StepFailed(f"request went to {rec['url']}, expected https://openapi.m-pesa.com{MARKET_PATH}{path_suffix}")
    elif not rec["url"].startswith(BASE_URL + MARKET_PATH) or not rec["url"].endswith(path_suffix):
        raise StepFailed(f"request went to {rec['url']}, expected {BASE_URL}{MARKET_PATH}{path_suffix}")
    if rec["method"] != method:
        raise StepFailed(f"request method {rec['method']}, expected {method}")
    want = EXPECTED_STATUS[step]
    if rec["status"] != want:
        raise StepFailed(f"HTTP {rec['status']} (expected {want}): {short(rec['response'] or '', 300)}")


def check_session_exchange(rec, label="getSession"):
    """The getSession request that the library makes (also before every other call)."""
    try:
        check_exchange(rec, "getSession", "/getSession/", "GET")
        try:
            body = json.loads(rec["response"])
        except (TypeError, ValueError):
            raise StepFailed(f"answered non-JSON: {short(rec['response'] or '', 300)}")
        if body.get("output_ResponseCode") != "INS-0":
            raise StepFailed(f"output_ResponseCode is {body.get('output_ResponseCode')!r}: {short(body)}")
        if not body.get("output_SessionID"):
            raise StepFailed(f"no output_SessionID: {short(body)}")
    except StepFailed as exc:
        raise StepFailed(f"{label}: {exc}") from None
    return body


def check_call(step, start, result, sent, path_suffix, method, require=()):
    """Checks one library call: exactly [getSession, <call>] went out, and the reply."""
    new = exchanges_since(start)
    if len(new) != 2:
        raise StepFailed(
            f"expected the library to make 2 requests (getSession, then the call), saw {len(new)}: "
            + ", ".join(f"{r['method']} {r['url']}" for r in new)
        )
    # When this getSession fails, the library does not stop: it sends the call
    # anyway with "Authorization: Bearer None" (NOTES.md §6).
    check_session_exchange(new[0], label="the getSession the library made before the call")
    check_exchange(new[1], step, path_suffix, method)
    if not isinstance(result, dict):
        raise StepFailed(f"library returned {type(result).__name__}, expected a dict: {short(repr(result))}")
    if result.get("output_ResponseCode") != "INS-0":
        raise StepFailed(
            f"output_ResponseCode is {result.get('output_ResponseCode')!r} "
            f"({result.get('output_ResponseDesc')!r}): {short(result)}"
        )
    echoed = result.get("output_ThirdPartyConversationID")
    if echoed != sent["input_ThirdPartyConversationID"]:
        raise StepFailed(
            f"output_ThirdPartyConversationID {echoed!r} does not echo "
            f"{sent['input_ThirdPartyConversationID']!r}: {short(result)}"
        )
    for key in require:
        value = result.get(key)
        if not isinstance(value, str) or not value or value == "N/A":
            raise StepFailed(f"{key} missing or empty ({value!r}): {short(result)}")
    return result


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
        with contextlib.redirect_stdout(sys.stderr):  # the library prints its own errors
            shown = fn(start)
    except StepFailed as exc:
        failed += 1
        print(f"FAIL {name}: {exc}")
        return
    except Exception as exc:  # the library raises bare exceptions (KeyError, AuthenticationError, JSON errors)
        failed += 1
        print(f"FAIL {name}: {type(exc).__name__}: {' '.join(str(exc).split())} ({describe_last(start)})")
        return
    passed += 1
    print(f"ok {name}: {short(shown)}")


def step_get_session(start):
    session_id = mpesa.get_session_id()
    new = exchanges_since(start)
    if len(new) != 1:
        raise StepFailed(f"expected exactly 1 request, saw {len(new)}")
    body = check_session_exchange(new[0])
    if session_id != body["output_SessionID"]:
        raise StepFailed(f"library returned {session_id!r}, server sent {body['output_SessionID']!r}")
    state["getSession"] = session_id
    return body


def step_c2b(start):
    query = {
        "input_Amount": AMOUNT,
        "input_Country": COUNTRY,
        "input_Currency": CURRENCY,
        "input_CustomerMSISDN": MSISDN,
        "input_ServiceProviderCode": SHORTCODE,
        "input_ThirdPartyConversationID": new_tpcid(),
        "input_TransactionReference": "T1234C",
        "input_PurchasedItemsDesc": "Python Book",
    }
    result = mpesa.customer_to_bussiness(query)
    check_call(
        "c2b", start, result, query, "/c2bPayment/singleStage/", "POST",
        require=("output_TransactionID", "output_ConversationID"),
    )
    state["c2b"] = result
    return result


def step_b2c(start):
    query = {
        "input_Amount": AMOUNT,
        "input_Country": COUNTRY,
        "input_Currency": CURRENCY,
        "input_CustomerMSISDN": MSISDN,
        "input_ServiceProviderCode": SHORTCODE,
        "input_ThirdPartyConversationID": new_tpcid(),
        "input_TransactionReference": "T1235C",
        "input_PaymentItemsDesc": "Salary payment",
    }
    result = mpesa.bussiness_to_customer(query)
    check_call(
        "b2c", start, result, query, "/b2cPayment/", "POST",
        require=("output_TransactionID", "output_ConversationID"),
    )
    return result


def step_reversal(start):
    query = {
        # python-pesa's verify_query makes input_ReversalAmount mandatory (the API
        # does not); the full amount of the C2B is the faithful value.
        "input_ReversalAmount": AMOUNT,
        "input_Country": COUNTRY,
        "input_ServiceProviderCode": SHORTCODE,
        "input_ThirdPartyConversationID": new_tpcid(),
        "input_TransactionID": state["c2b"]["output_TransactionID"],
    }
    result = mpesa.payment_reversal(query)
    check_call(
        "reversal", start, result, query, "/reversal/", "PUT",
        require=("output_TransactionID", "output_ConversationID"),
    )
    return result


def step_query(start):
    query = {
        "input_QueryReference": state["c2b"]["output_TransactionID"],
        "input_Country": COUNTRY,
        "input_ServiceProviderCode": SHORTCODE,
        "input_ThirdPartyConversationID": new_tpcid(),
    }
    result = mpesa.query_transaction_status(query)
    check_call(
        "query", start, result, query, "/queryTransactionStatus/", "GET",
        require=("output_ResponseTransactionStatus",),
    )
    return result


run_step("getSession", step_get_session)
run_step("c2b", step_c2b)
run_step("b2c", step_b2c)
run_step("reversal", step_reversal, needs=("c2b",))
run_step("query", step_query, needs=("c2b",))

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
