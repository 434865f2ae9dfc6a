"""DSSE with securesystemslib (PyPI), independently of notarium's own code, for tests/differential.rs.

Reads one JSON object on stdin:
  "pae":    [{"type": payload type, "payload": base64}]      -> the PAE bytes securesystemslib builds (hex)
  "verify": [{"envelope": {...}, "key": PEM, "scheme": s}]  -> whether the envelope verifies with that key
  "sign":   [{"type": payload type, "payload": base64, "scheme": "ecdsa-sha2-nistp256" | "ed25519"}]
                                                            -> an envelope signed by a fresh key, and the key's PEM
and writes {"pae": [...], "verify": [true | "why not"], "sign": [{"envelope": {...}, "key": PEM}]}.
"""
import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey


def sslib_key(public_key, scheme):
    # securesystemslib only tries keys whose keyid equals the signature's; notarium leaves it empty.
    parsed = SSlibKey.from_crypto(public_key, scheme=scheme)
    return SSlibKey("", parsed.keytype, parsed.scheme, parsed.keyval)


def verifies(case):
    envelope = Envelope.from_dict(case["envelope"])
    key = sslib_key(load_pem_public_key(case["key"].encode()), case["scheme"])
    try:
        envelope.verify([key], 1)
    except VerificationError as e:
        return f"rejected: {e}"
    return True


signers = {
    "ecdsa-sha2-nistp256": ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
}


def signed(case):
    private_key = signers[case["scheme"]]
    signer = CryptoSigner(private_key, sslib_key(private_key.public_key(), case["scheme"]))
    envelope = Envelope(base64.b64decode(case["payload"]), case["type"], {})
    envelope.sign(signer)
    pem = private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return {"envelope": envelope.to_dict(), "key": pem}


request = json.load(sys.stdin)
json.dump(
    {
        "pae": [Envelope(base64.b64decode(c["payload"]), c["type"], {}).pae().hex() for c in request["pae"]],
        "verify": [verifies(c) for c in request["verify"]],
        "sign": [signed(c) for c in request["sign"]],
    },
    sys.stdout,
)
