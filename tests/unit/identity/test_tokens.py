"""ES256 access tokens and P-256 JWKs from the JWT signer adapter, as the runtime verifies them."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from identity.adapters.tokens import JwtTokenSigner, jwk_thumbprint
from identity.domain.model import AccessToken, SigningKey
from runtime.auth import AccessTokenExpired, AccessTokenInvalid, Caller, JwksCache, TokenVerifier

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


def verifier(*keys: SigningKey, now: datetime = NOON) -> TokenVerifier:
    """The runtime's verifier, as every service (identity too) checks callers, with ``keys``."""

    async def published() -> list[dict[str, str]]:
        return [dict(key.public_jwk) for key in keys]

    return TokenVerifier(JwksCache(published), leeway=0, clock=now.timestamp)


async def test_a_fresh_signer_signs_with_a_key_read_back_from_storage() -> None:
    key = JwtTokenSigner().new_key(NOON)
    token = JwtTokenSigner().sign(TOKEN, key)  # loads the private key from its PEM
    caller = await verifier(key).verify(token)
    assert caller == Caller.user("users/uada", ["admin", "customer"])


async def test_tokens_verify_only_with_their_key_issuer_and_lifetime() -> None:
    signer = JwtTokenSigner()
    key, other = signer.new_key(NOON), signer.new_key(NOON)
    token = signer.sign(TOKEN, key)
    # The other key under this key's kid: the signature does not verify.
    impostor = replace(other, kid=key.kid, public_jwk={**other.public_jwk, "kid": key.kid})
    foreign = JwtTokenSigner(issuer="someone.else").sign(TOKEN, key)
    for bad, keys in [(token, [other]), (token, [impostor]), (foreign, [key])]:
        with pytest.raises(AccessTokenInvalid):
            await verifier(*keys).verify(bad)
    with pytest.raises(AccessTokenExpired):
        await verifier(key, now=TOKEN.expire_time).verify(token)
    last_second = TOKEN.expire_time - timedelta(seconds=1)
    assert (await verifier(key, now=last_second).verify(token)).subject == "users/uada"
