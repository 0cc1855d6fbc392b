"""ES256 access tokens and P-256 JWKs from the JWT signer adapter."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from identity.adapters.tokens import JwtTokenSigner, jwk_thumbprint
from identity.domain.errors import CallerUnauthenticated
from identity.domain.model import AccessToken

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKEN = AccessToken("uada", ("admin", "customer"), NOON, NOON + timedelta(minutes=15))


def unpadded_b64url_bytes(value: str) -> bytes:
    assert "=" not in value
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def test_a_new_key_is_a_p256_signing_jwk_named_by_its_thumbprint() -> None:
    key = JwtTokenSigner().new_key(NOON)
    jwk = key.public_jwk
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
    }
    assert len(unpadded_b64url_bytes(jwk["x"])) == 32
    assert len(unpadded_b64url_bytes(jwk["y"])) == 32
    assert jwk["kid"] == key.kid == jwk_thumbprint(jwk)
    assert "d" not in jwk  # never the private part
    assert key.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE" not in repr(key)


def test_rfc_7638_thumbprint_example_for_an_ec_key_shape() -> None:
    # The thumbprint hashes only crv, kty, x, y in lexicographic order, without spaces.
    jwk = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "BB", "kid": "ignored", "use": "sig"}
    assert jwk_thumbprint(jwk) == jwk_thumbprint(
        {"y": "BB", "x": "AA", "crv": "P-256", "kty": "EC"}
    )
    assert jwk_thumbprint(jwk) != jwk_thumbprint({**jwk, "x": "AB"})


def test_tokens_carry_the_claims_and_header_the_contract_lists() -> None:
    signer = JwtTokenSigner()
    key = signer.new_key(NOON)
    token = signer.sign(TOKEN, key)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": key.kid}
    claims = jwt.decode(
        token,
        jwt.PyJWK(dict(key.public_jwk)),
        algorithms=["ES256"],
        issuer="identity.agora",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": "identity.agora",
        "sub": "users/uada",
        "roles": ["admin", "customer"],
        "iat": int(NOON.timestamp()),
        "exp": int((NOON + timedelta(minutes=15)).timestamp()),
    }


def test_a_fresh_signer_verifies_with_keys_read_back_from_storage() -> None:
    key = JwtTokenSigner().new_key(NOON)
    token = JwtTokenSigner().sign(TOKEN, key)  # loads the private key from its PEM
    assert JwtTokenSigner().verify(token, [key], NOON) == TOKEN


def test_verification_refuses_other_keys_issuers_algorithms_and_expired_tokens() -> None:
    signer = JwtTokenSigner()
    key, other = signer.new_key(NOON), signer.new_key(NOON)
    token = signer.sign(TOKEN, key)
    # The other key under this key's kid: the signature does not verify.
    impostor = replace(other, kid=key.kid, public_jwk={**other.public_jwk, "kid": key.kid})
    unsigned = jwt.encode({"sub": "users/uada"}, "", algorithm="none", headers={"kid": key.kid})
    foreign = JwtTokenSigner(issuer="someone.else").sign(TOKEN, key)
    cases = [
        (token, [other]),
        (token, [impostor]),
        (unsigned, [key]),
        (foreign, [key]),
        ("garbage", [key]),
    ]
    for bad, keys in cases:
        with pytest.raises(CallerUnauthenticated):
            signer.verify(bad, keys, NOON)
    with pytest.raises(CallerUnauthenticated, match="expired"):
        signer.verify(token, [key], TOKEN.expire_time)
    assert signer.verify(token, [key], TOKEN.expire_time - timedelta(seconds=1)) == TOKEN
