"""Drives schemathesis against MTN's definitions with valid sandbox credentials.

Provisions one sandbox API user, takes an access token per product and a consent (oauth2)
token for the userinfo operations, writes one schemathesis config per definition, and runs
`schemathesis run` for each. Every built-in check is on; the hooks module
`mkoba_exclusions` (loaded through SCHEMATHESIS_HOOKS) forgives exactly the failures that
exclusions.toml lists, each with its reason. Exit status: 0 when every run passed.

Environment: MKOBA_URL, MKOBA_KEY_COLLECTION, MKOBA_KEY_DISBURSEMENT, MKOBA_KEY_REMITTANCE;
optional MKOBA_CONFORMANCE_EXAMPLES (test cases per operation, default 25),
MKOBA_CONFORMANCE_SEED (default 20261122), MKOBA_CONFORMANCE_REPORT (a directory for
schemathesis' JUnit reports).
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.environ["MKOBA_URL"].rstrip("/")
PRODUCTS = ("collection", "disbursement", "remittance")
KEYS = {p: os.environ[f"MKOBA_KEY_{p.upper()}"] for p in PRODUCTS}
EXAMPLES = os.environ.get("MKOBA_CONFORMANCE_EXAMPLES", "25")
SEED = os.environ.get("MKOBA_CONFORMANCE_SEED", "20261122")
CIBA = "urn:openid:params:grant-type:ciba"
with open(os.path.join(HERE, "exclusions.toml"), "rb") as _f:
    SKIPS = tomllib.load(_f).get("skip", [])


def call(method, path, headers, body=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def expect(status, got, what):
    code, body = got
    if code != status:
        sys.exit(f"setup: {what} answered {code}: {body!r}")
    return json.loads(body) if body else None


def provision():
    """A sandbox API user with its key, created through the provisioning API."""
    user = str(uuid.uuid4())
    key = KEYS["collection"]
    expect(
        201,
        call(
            "POST",
            "/v1_0/apiuser",
            {
                "X-Reference-Id": user,
                "Ocp-Apim-Subscription-Key": key,
                "Content-Type": "application/json",
            },
            json.dumps({"providerCallbackHost": "127.0.0.1"}),
        ),
        "POST /v1_0/apiuser",
    )
    api_key = expect(
        201,
        call("POST", f"/v1_0/apiuser/{user}/apikey", {"Ocp-Apim-Subscription-Key": key}, b""),
        "POST /v1_0/apiuser/{id}/apikey",
    )["apiKey"]
    return user, api_key


def tokens(product, basic):
    """An access token and a consent (oauth2) token for `product`."""
    key = KEYS[product]
    access = expect(
        200,
        call(
            "POST",
            f"/{product}/token/",
            {"Ocp-Apim-Subscription-Key": key, "Authorization": basic},
            b"",
        ),
        f"POST /{product}/token/",
    )["access_token"]
    form = {
        "Ocp-Apim-Subscription-Key": key,
        "Authorization": basic,
        "X-Target-Environment": "sandbox",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    auth_req_id = expect(
        200,
        call(
            "POST",
            f"/{product}/v1_0/bc-authorize",
            form,
            "login_hint=ID:56733123453/MSISDN&scope=profile&access_type=offline",
        ),
        f"POST /{product}/v1_0/bc-authorize",
    )["auth_req_id"]
    consent = expect(
        200,
        call(
            "POST",
            f"/{product}/oauth2/token/",
            form,
            urllib.parse.urlencode({"grant_type": CIBA, "auth_req_id": auth_req_id}),
        ),
        f"POST /{product}/oauth2/token/",
    )["access_token"]
    return access, consent


def toml_str(value):
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config(key, bearer, basic, consent):
    """Schemathesis' config for one definition: valid credentials per operation."""
    lines = [
        f"seed = {SEED}",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        "[headers]",
        f'"Ocp-Apim-Subscription-Key" = {toml_str(key)}',
    ]
    if bearer is None:
        return "\n".join(lines) + "\n"
    lines += [
        f'"Authorization" = {toml_str("Bearer " + bearer)}',
        '"X-Target-Environment" = "sandbox"',
    ]
    for path, auth in (
        ("/token/", basic),
        ("/oauth2/token/", basic),
        ("/v1_0/bc-authorize", basic),
        ("/oauth2/v1_0/userinfo", "Bearer " + consent),
    ):
        lines += [
            "[[operations]]",
            f"include-path = {toml_str(path)}",
            "[operations.headers]",
            f'"Ocp-Apim-Subscription-Key" = {toml_str(key)}',
            f'"Authorization" = {toml_str(auth)}',
            '"X-Target-Environment" = "sandbox"',
        ]
    return "\n".join(lines) + "\n"


def run(name, url, cfg, workdir):
    path = os.path.join(workdir, f"{name}.toml")
    with open(path, "w") as f:
        f.write(cfg)
    args = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "--config-file",
        path,
        "run",
        os.path.join(HERE, "definitions", f"{name}.json"),
        "--url",
        url,
        "--checks",
        "all",
        "--workers",
        "1",
        "--output-truncate",
        "true",
    ]
    for skip in SKIPS:
        args += ["--exclude-path", skip["path"]]
    report = os.environ.get("MKOBA_CONFORMANCE_REPORT")
    if report:
        args += ["--report", "junit", "--report-dir", report, "--report-junit-path", f"{name}.xml"]
    env = dict(os.environ)
    env["SCHEMATHESIS_HOOKS"] = "mkoba_exclusions"
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    env["MKOBA_EXCLUSION_LOG"] = os.path.join(workdir, "forgiven.jsonl")
    env["NO_COLOR"] = "1"
    print(f"==> schemathesis: {name}", flush=True)
    return subprocess.run(args, env=env, cwd=workdir).returncode


def main():
    user, api_key = provision()
    basic = "Basic " + base64.b64encode(f"{user}:{api_key}".encode()).decode()
    creds = {p: tokens(p, basic) for p in PRODUCTS}
    failed = []
    with tempfile.TemporaryDirectory() as workdir:
        runs = [
            (p, f"{BASE}/{p}", config(KEYS[p], creds[p][0], basic, creds[p][1]))
            for p in PRODUCTS
        ]
        runs.append(("sandbox-provisioning-api", BASE, config(KEYS["collection"], None, None, None)))
        for name, url, cfg in runs:
            if run(name, url, cfg, workdir) != 0:
                failed.append(name)
        forgiven = {}
        log = os.path.join(workdir, "forgiven.jsonl")
        if os.path.exists(log):
            with open(log) as f:
                for line in f:
                    entry = json.loads(line)
                    forgiven[entry["id"]] = forgiven.get(entry["id"], 0) + 1
    print("\nForgiven by exclusions.toml (id: failures):")
    for ident, count in sorted(forgiven.items()):
        print(f"  {ident}: {count}")
    if failed:
        print(f"\nconformance: FAILED for {', '.join(failed)}")
        return 1
    print("\nconformance: all four definitions passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
