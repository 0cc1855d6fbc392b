"""Access tokens as ES256 JWTs (PyJWT) and their P-256 signing keys (cryptography).

A key's id is its RFC 7638 JWK thumbprint, so the same public key always has the same
``kid``. Private keys are parsed once per process and cached by their stored form (not by
``kid`` alone, so a stored key that changed under the same ``kid`` is never confused).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity.domain.model import ISSUER, AccessToken, SigningKey
from identity.domain.ports import TokenSigner

ALGORITHM = "ES256"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """The RFC 7638 thumbprint of an EC public key: SHA-256 of its required members."""
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


class JwtTokenSigner(TokenSigner):
    """Signs access tokens with ES256 on P-256 keys.

    Tokens are verified by the runtime (:class:`runtime.auth.TokenVerifier`), in every
    service alike, against the public keys identity publishes.
    """

    def __init__(self, issuer: str = ISSUER) -> None:
        self._issuer = issuer
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}

    def new_key(self, now: datetime) -> SigningKey:
        private = ec.generate_private_key(ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        kid = jwk_thumbprint(jwk)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._private[pem] = private
        return SigningKey(
            kid=kid,
            algorithm=ALGORITHM,
            private_key_pem=pem,
            public_jwk={**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"},
            create_time=now,
        )

    def sign(self, token: AccessToken, key: SigningKey) -> str:
        claims = {
            "iss": self._issuer,
            "sub": token.subject,
            "roles": list(token.roles),
            "iat": int(token.issue_time.timestamp()),
            "exp": int(token.expire_time.timestamp()),
        }
        return jwt.encode(
            claims, self._private_key(key), algorithm=ALGORITHM, headers={"kid": key.kid}
        )

    def _private_key(self, key: SigningKey) -> ec.EllipticCurvePrivateKey:
        private = self._private.get(key.private_key_pem)
        if private is None:
            loaded = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise TypeError(f"signing key {key.kid!r} is not an EC key")
            private = self._private[key.private_key_pem] = loaded
        return private
