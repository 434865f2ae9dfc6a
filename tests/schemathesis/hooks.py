"""Schemathesis hooks for tests/api_fuzz.rs (loaded through SCHEMATHESIS_HOOKS).

Fuzzed image references and key ids almost never name an image or key that exists, so half of the
generated `image` strings are swapped for a real image on the test registry (NOTARIUM_FUZZ_IMAGE) and half
of the `key` strings for a configured key: sign, attest, verify and referrers then run their whole path,
registry writes included. A 502 naming another registry, one the
fuzzer made up and that nothing answers on, is notarium reporting an upstream it cannot reach; it is
dropped, and so is a batch sign's 502 (every image failed) when each image's problem is such a 502. A
request whose `Transfer-Encoding` header names no coding the server takes is not HTTP/1.1 that routing ever
sees: the HTTP layer refuses its framing with a bare 400 (no body, as docs/API.md says), so that answer is
dropped too. Any other 5xx, and any other answer outside the document, fails the run.
"""

import os

import schemathesis

LIVE_IMAGE = os.environ["NOTARIUM_FUZZ_IMAGE"]
LIVE_REGISTRY = LIVE_IMAGE.split("/", 1)[0]
LIVE_FIELDS = {"image": LIVE_IMAGE, "key": "dev-ecdsa"}
UPSTREAM_PROBLEMS = ("/registry-unreachable", "/registry-error")


def _live_half(fields):
    """`fields` with every string image or key of even length replaced by the live one."""
    if not isinstance(fields, dict):
        return fields
    live = {
        name: value
        for name, value in LIVE_FIELDS.items()
        if isinstance(fields.get(name), str) and len(fields[name]) % 2 == 0
    }
    return {**fields, **live}


@schemathesis.hook
def map_body(context, body):
    return _live_half(body)


@schemathesis.hook
def map_query(context, query):
    return _live_half(query)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure except a 502 about a registry other than the test's own, and the HTTP layer's
    bare 400 to a request with broken framing."""
    if _framing_refused(response):
        return False
    if getattr(failure, "status_code", None) != 502:
        return True
    try:
        answer = response.json()
    except ValueError:
        return True
    results = answer.get("results") if isinstance(answer, dict) else None
    problems = [r.get("problem") or {} for r in results] if isinstance(results, list) else [answer]
    return not problems or any(_ours(problem) for problem in problems)


def _ours(problem):
    """True unless `problem` is a 502 about a registry other than the test's own."""
    upstream = str(problem.get("type", "")).endswith(UPSTREAM_PROBLEMS)
    return not upstream or LIVE_REGISTRY in str(problem.get("detail", ""))


def _framing_refused(response):
    """True for the HTTP layer's bodiless 400 to a request whose Transfer-Encoding is not `chunked`."""
    coding = response.request.headers.get("Transfer-Encoding")
    return (
        coding is not None
        and coding.strip().lower() != "chunked"
        and response.status_code == 400
        and not response.content
        and "content-type" not in response.headers
    )
