#!/usr/bin/env python3
"""An independent check of sostle's attestations: securesystemslib (the reference DSSE
implementation, from PyPI) decodes the envelope and computes its pre-authentication encoding;
Python's cryptography verifies the ECDSA P-256 signature over it with the lock's public key.
Prints the in-toto statement's type, predicate type and subject digest.

Usage: dsse_check.py ENVELOPE.json PUBLIC.pem
"""
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope

envelope = Envelope.from_dict(json.load(open(sys.argv[1])))
key = serialization.load_pem_public_key(open(sys.argv[2], "rb").read())
assert envelope.payload_type == "application/vnd.in-toto+json", envelope.payload_type
pae = envelope.pae()
verified = 0
for sig in envelope.signatures.values():
    key.verify(bytes.fromhex(sig.signature), pae, ec.ECDSA(hashes.SHA256()))
    verified += 1
assert verified == 1, verified
statement = json.loads(envelope.payload)
print(statement["_type"], statement["predicateType"], statement["subject"][0]["digest"]["sha256"])
