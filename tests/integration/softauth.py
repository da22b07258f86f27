"""A software WebAuthn authenticator for the tests of updraft-sts: an EC P-256 credential (the `cryptography`
module), registrations with attestation "none" or "packed" self attestation, and assertions built byte for byte as
an authenticator builds them (authenticatorData = rpIdHash || flags || signCount (4 bytes, big-endian); the
signature is ECDSA-SHA256, DER, over authenticatorData || SHA-256(clientDataJSON)). Options make it misbehave:
UV clear, a given sign count, another origin, another RP id, another type.

The tiny CBOR encoder below covers what an attestation object and a COSE key need (unsigned and negative integers,
byte and text strings, arrays, maps); it lives in this test file only."""

import base64
import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for size, fmt, info in ((0xff, ">B", 24), (0xffff, ">H", 25), (0xffffffff, ">I", 26)):
        if n <= size:
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


def cbor(v):
    if isinstance(v, bool):
        return bytes([0xf5 if v else 0xf4])
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, list):
        return _head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(type(v))


class SoftAuthenticator:
    def __init__(self, rp_id="localhost", origin="http://localhost:8090", sign_count=0):
        self.rp_id = rp_id
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = sign_count
        self.aaguid = bytes(16)

    def cose_key(self):
        n = self.key.public_key().public_numbers()
        return cbor({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})

    def _client_data(self, typ, challenge_b64, origin=None, challenge=None):
        return json.dumps({"type": typ, "challenge": challenge if challenge is not None else challenge_b64,
                           "origin": origin or self.origin, "crossOrigin": False}, separators=(",", ":")).encode()

    def _sign(self, data):
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def register(self, options, fmt="none", uv=True, origin=None, rp_id=None, typ="webauthn.create"):
        """A credential as navigator.credentials.create() returns it, from the "publicKey" options."""
        cdj = self._client_data(typ, options["challenge"], origin)
        flags = FLAG_UP | FLAG_AT | (FLAG_UV if uv else 0)
        auth_data = (hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([flags])
                     + struct.pack(">I", self.sign_count) + self.aaguid
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id + self.cose_key())
        if fmt == "none":
            stmt = {}
        elif fmt == "packed":
            stmt = {"alg": -7, "sig": self._sign(auth_data + hashlib.sha256(cdj).digest())}
        else:
            raise ValueError(fmt)
        att = cbor({"fmt": fmt, "attStmt": stmt, "authData": auth_data})
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                "response": {"clientDataJSON": b64url(cdj), "attestationObject": b64url(att)}}

    def assert_(self, options, uv=True, up=True, sign_count=None, origin=None, rp_id=None, typ="webauthn.get",
                challenge=None, user_handle=None):
        """An assertion as navigator.credentials.get() returns it; the sign count grows by one unless given."""
        if sign_count is None:
            self.sign_count += 1
            sign_count = self.sign_count
        cdj = self._client_data(typ, options["challenge"], origin, challenge)
        flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0)
        auth_data = hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)
        sig = self._sign(auth_data + hashlib.sha256(cdj).digest())
        resp = {"clientDataJSON": b64url(cdj), "authenticatorData": b64url(auth_data), "signature": b64url(sig)}
        if user_handle is not None:
            resp["userHandle"] = user_handle
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                "response": resp}
