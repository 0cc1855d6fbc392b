"""Forgeries of a real access token, for tests that check services refuse them::

    real = session.access_token                       # identity's, from a login
    claims_of(real)                                   # its claims, unverified
    with_alg_none(real)                               # same claims, `alg: none`, no signature
    tampered(real, roles=["customer", "admin"])       # claims changed, signature kept
    signed_by_stranger(real)                          # same claims, a key identity never had
    signed_by_stranger(real, same_kid=True)           # ... under the kid of identity's key
    hmac_with_public_key(real, jwk)                   # HS256 keyed with identity's public key

Each forgery keeps the real token's claims unless told otherwise, so the only thing wrong
with it is the thing the test names.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWTs encode their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _part(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def _encode(part: Mapping[str, Any]) -> str:
    return b64url(json.dumps(dict(part), separators=(",", ":")).encode())


def header_of(token: str) -> dict[str, Any]:
    """A token's header, unverified."""
    return _part(token.split(".")[0])


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, unverified."""
    return _part(token.split(".")[1])


def with_alg_none(token: str) -> str:
    """The token's claims under ``{"alg": "none"}`` (and its ``kid``), with no signature."""
    header = {"alg": "none", "typ": "JWT", "kid": header_of(token).get("kid", "")}
    return f"{_encode(header)}.{_encode(claims_of(token))}."


def tampered(token: str, **changes: Any) -> str:
    """The token with some claims changed and its header and signature kept as they were."""
    header, _, signature = token.split(".")
    return f"{header}.{_encode({**claims_of(token), **changes})}.{signature}"


def signed_by_stranger(token: str, *, same_kid: bool = False) -> str:
    """The token's claims signed ES256 by a fresh P-256 key identity never had, under a
    ``kid`` of its own, or under the ``kid`` of the real token with ``same_kid``."""
    key = ec.generate_private_key(ec.SECP256R1())
    kid = (
        header_of(token)["kid"]
        if same_kid
        else "stranger-"
        + b64url(
            key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
        )
    )
    return jwt.encode(claims_of(token), key, algorithm="ES256", headers={"kid": kid})


def hmac_with_public_key(token: str, jwk: Mapping[str, str]) -> str:
    """The token's claims "signed" HS256 with identity's public key (in PEM) as the secret:
    the algorithm-confusion attack on verifiers that let the header choose."""
    public = ECAlgorithm.from_jwk(json.dumps({k: jwk[k] for k in ("kty", "crv", "x", "y")}))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    secret = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}
    signing_input = f"{_encode(header)}.{_encode(claims_of(token))}"
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(mac.finalize())}"
