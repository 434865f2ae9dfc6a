"""Verifies a DSSE envelope with securesystemslib (PyPI), independently of notarium's own code.

Usage: dsse_verify.py ENVELOPE.json PUBLIC_KEY.pem SCHEME
Prints the verified payload type and exits 0, or prints why not and exits 1.
"""
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

envelope_path, key_path, scheme = sys.argv[1:4]
envelope = Envelope.from_dict(json.load(open(envelope_path)))
public_key = load_pem_public_key(open(key_path, "rb").read())
# securesystemslib only tries keys whose keyid equals the signature's; notarium (like cosign) leaves it empty.
parsed = SSlibKey.from_crypto(public_key, scheme=scheme)
key = SSlibKey("", parsed.keytype, parsed.scheme, parsed.keyval)
try:
    envelope.verify([key], 1)
except VerificationError as e:
    print(f"rejected: {e}")
    sys.exit(1)
print(f"verified {envelope.payload_type}")
