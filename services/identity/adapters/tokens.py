"""Access tokens as ES256 JWTs (PyJWT) and their P-256 signing keys (cryptography).

A key's id is its RFC 7638 JWK thumbprint, so the same public key always has the same
``kid``. Keys are parsed once per process and cached by their stored form (not by ``kid``
alone, so a stored key that changed under the same ``kid`` is never confused).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from identity.domain.errors import CallerUnauthenticated
from identity.domain.model import ISSUER, AccessToken, SigningKey
from identity.domain.ports import TokenSigner

ALGORITHM = "ES256"
_USER_PREFIX = "users/"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """The RFC 7638 thumbprint of an EC public key: SHA-256 of its required members."""
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


class JwtTokenSigner(TokenSigner):
    """Signs access tokens with ES256 on P-256 keys and verifies them against a key set."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self._issuer = issuer
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._public: dict[tuple[tuple[str, str], ...], Any] = {}

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

    def verify(self, token: str, keys: Sequence[SigningKey], now: datetime) -> AccessToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise CallerUnauthenticated("the access token is not a JWT") from None
        key = next((k for k in keys if k.kid == header.get("kid")), None)
        if key is None:
            raise CallerUnauthenticated("the access token was not signed by a current key")
        try:
            claims = jwt.decode(
                token,
                self._public_key(key),
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                # Expiry is checked below against the service's clock, not PyJWT's.
                options={
                    "require": ["iss", "sub", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            raise CallerUnauthenticated("the access token does not verify") from None
        subject, roles = claims["sub"], claims.get("roles", [])
        if (
            not isinstance(subject, str)
            or not subject.startswith(_USER_PREFIX)
            or not isinstance(roles, list)
            or not all(isinstance(role, str) for role in roles)
            or not isinstance(claims["exp"], int)
            or not isinstance(claims["iat"], int)
        ):
            raise CallerUnauthenticated("the access token's claims are malformed")
        expire_time = datetime.fromtimestamp(claims["exp"], UTC)
        if now >= expire_time:
            raise CallerUnauthenticated("the access token has expired")
        return AccessToken(
            user_id=subject.removeprefix(_USER_PREFIX),
            roles=tuple(roles),
            issue_time=datetime.fromtimestamp(claims["iat"], UTC),
            expire_time=expire_time,
        )

    def _private_key(self, key: SigningKey) -> ec.EllipticCurvePrivateKey:
        private = self._private.get(key.private_key_pem)
        if private is None:
            loaded = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise TypeError(f"signing key {key.kid!r} is not an EC key")
            private = self._private[key.private_key_pem] = loaded
        return private

    def _public_key(self, key: SigningKey) -> Any:
        cache_key = tuple(sorted(key.public_jwk.items()))
        public = self._public.get(cache_key)
        if public is None:
            public = self._public[cache_key] = ECAlgorithm.from_jwk(dict(key.public_jwk))
        return public
