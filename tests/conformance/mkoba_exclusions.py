"""Schemathesis hooks: forgive exactly the failures exclusions.toml lists, nothing else.

Loaded by conformance.py through SCHEMATHESIS_HOOKS. Every built-in response check is
wrapped: the check runs unchanged, and when it fails, the failure is forgiven only if an
entry of exclusions.toml matches all of its fields:

  check       the schemathesis check's name (required)
  operations  "METHOD /path" labels as the definition spells them (absent: every operation)
  status      response status codes (absent: any)
  body        a regular expression the response body must contain
  failure     a regular expression the failure's text must contain
  reason      why Mkoba deliberately differs from the definition (required)

Each forgiven failure is appended to $MKOBA_EXCLUSION_LOG, so the run can show which
exclusions were used.
"""

import functools
import json
import os
import re
import tomllib

from schemathesis.checks import CHECKS, is_check_class, load_all_checks

load_all_checks()

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "exclusions.toml"), "rb") as f:
    EXCLUSIONS = tomllib.load(f)["exclusion"]

for entry in EXCLUSIONS:
    missing = {"id", "check", "reason"} - entry.keys()
    if missing:
        raise ValueError(f"exclusions.toml: an entry lacks {sorted(missing)}: {entry}")


def _text(response):
    try:
        return response.text
    except Exception:
        return ""


def _forgiven(check, failure, response, case):
    label = case.operation.label
    for entry in EXCLUSIONS:
        if entry["check"] != check:
            continue
        if "operations" in entry and label not in entry["operations"]:
            continue
        if "status" in entry and response.status_code not in entry["status"]:
            continue
        if "body" in entry and not re.search(entry["body"], _text(response)):
            continue
        if "failure" in entry and not re.search(entry["failure"], str(failure)):
            continue
        return entry
    return None


def _log(entry, label, response):
    path = os.environ.get("MKOBA_EXCLUSION_LOG")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"id": entry["id"], "operation": label, "status": response.status_code}) + "\n")


def _wrap(name, check):
    @functools.wraps(check)
    def wrapped(ctx, response, case):
        try:
            return check(ctx, response, case)
        except AssertionError as failure:
            entry = _forgiven(name, failure, response, case)
            if entry is None:
                raise
            _log(entry, case.operation.label, response)
            return None

    return wrapped


for _name in CHECKS.get_all_names():
    _check = CHECKS.get_one(_name)
    if not is_check_class(_check):
        CHECKS.register(_wrap(_name, _check))
