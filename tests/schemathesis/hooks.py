"""Schemathesis hooks for tests/api_fuzz.rs (loaded through SCHEMATHESIS_HOOKS).

Fuzzed image references almost never name an image that exists, so half of the generated `image` strings
are swapped for a real image on the test registry (NOTARIUM_FUZZ_IMAGE): sign, attest, verify and
referrers then run their whole path, registry writes included. A 502 naming another registry, one the
fuzzer made up and that nothing answers on, is notarium reporting an upstream it cannot reach; it is
dropped. Any other 5xx fails the run.
"""

import os

import schemathesis

LIVE_IMAGE = os.environ["NOTARIUM_FUZZ_IMAGE"]
LIVE_REGISTRY = LIVE_IMAGE.split("/", 1)[0]
UPSTREAM_PROBLEMS = ("/registry-unreachable", "/registry-error")


def _live_half(value):
    if isinstance(value, str) and len(value) % 2 == 0:
        return LIVE_IMAGE
    return value


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict) and "image" in body:
        body = {**body, "image": _live_half(body["image"])}
    return body


@schemathesis.hook
def map_query(context, query):
    if isinstance(query, dict) and "image" in query:
        query = {**query, "image": _live_half(query["image"])}
    return query


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure except a 502 about a registry other than the test's own."""
    if getattr(failure, "status_code", None) != 502:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    upstream = str(problem.get("type", "")).endswith(UPSTREAM_PROBLEMS)
    return not upstream or LIVE_REGISTRY in str(problem.get("detail", ""))
