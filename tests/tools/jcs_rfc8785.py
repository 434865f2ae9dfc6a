"""Canonicalizes JSON texts with rfc8785 (Trail of Bits, PyPI), independently of notarium's own code.

Reads a JSON array of JSON texts on stdin and writes a JSON array with one object per text:
{"bytes": hex of rfc8785.dumps(value)}, or, when rfc8785 refuses the value,
{"refused": the exception's name, "bytes": hex of rfc8785.dumps(the value with every integer as a double)},
or {"refused": the exception's name} when that fails too (a lone surrogate, which Python's json reads into a str).
"""
import json
import sys

import rfc8785


def as_doubles(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [as_doubles(v) for v in value]
    if isinstance(value, dict):
        return {k: as_doubles(v) for k, v in value.items()}
    return value


out = []
for text in json.load(sys.stdin):
    value = json.loads(text)
    try:
        out.append({"bytes": rfc8785.dumps(value).hex()})
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as e:
        try:
            out.append({"refused": type(e).__name__, "bytes": rfc8785.dumps(as_doubles(value)).hex()})
        except (rfc8785.CanonicalizationError, UnicodeEncodeError):
            out.append({"refused": type(e).__name__})
json.dump(out, sys.stdout)
