"""Bearer tokens checked against identity's keys, and the contract's access rules.

Tokens are signed in identity's exact format by identity's own signer, on a fresh P-256
key; forgeries are built by hand. The key set comes from a fake fetcher that counts its
calls, and both clocks are moved by hand.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from identity.adapters.tokens import JwtTokenSigner
from identity.domain import model as identity_model
from identity.domain.model import AccessToken, SigningKey
from runtime.auth import (
    ADMIN,
    ISSUER,
    MAX_LEEWAY,
    AccessTokenExpired,
    AccessTokenInvalid,
    AccessTokenMissing,
    AuthSettings,
    Caller,
    CallerKind,
    InternalOnly,
    JwksCache,
    JwksUnavailable,
    MalformedAuthorization,
    MissingRole,
    TokenVerifier,
    authorize,
    bearer_token,
    load_auth_settings,
)
from runtime.config import ConfigError
from runtime.errors import AgoraError, Unavailable
from runtime.policy import Access, MethodRule

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=15)
LEEWAY = 30.0
MIN_REFRESH = 5.0
MAX_AGE = 300.0
ADA = "users/ada"


class Clock:
    """Seconds, moved by the tests."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeJwks:
    """Identity's key set as the fetcher sees it: counts fetches, can fail or be held."""

    def __init__(self, *keys: SigningKey) -> None:
        self.jwks: list[Mapping[str, str]] = [key.public_jwk for key in keys]
        self.calls = 0
        self.failure: Exception | None = None
        self.gate: asyncio.Event | None = None

    def publish(self, *keys: SigningKey) -> None:
        self.jwks = [key.public_jwk for key in keys]

    async def __call__(self) -> Sequence[Mapping[str, str]]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return list(self.jwks)


class Harness:
    """A verifier over a fake key set, with a wall clock and a monotonic clock."""

    def __init__(self, signer: JwtTokenSigner, key: SigningKey) -> None:
        self.signer = signer
        self.key = key
        self.jwks = FakeJwks(key)
        self.wall = Clock(NOON.timestamp())
        self.monotonic = Clock(1000.0)
        self.cache = JwksCache(
            self.jwks, max_age=MAX_AGE, min_refresh_interval=MIN_REFRESH, clock=self.monotonic
        )
        self.verifier = TokenVerifier(self.cache, leeway=LEEWAY, clock=self.wall)

    def token(
        self,
        key: SigningKey | None = None,
        roles: tuple[str, ...] = (identity_model.CUSTOMER,),
        issued: datetime = NOON,
    ) -> str:
        """An access token exactly as identity issues it."""
        access = AccessToken("ada", roles, issued, issued + LIFETIME)
        return self.signer.sign(access, key or self.key)

    def later(self, seconds: float) -> None:
        self.monotonic.now += seconds


@pytest.fixture
def signer() -> JwtTokenSigner:
    return JwtTokenSigner()


@pytest.fixture
def harness(signer: JwtTokenSigner) -> Harness:
    return Harness(signer, signer.new_key(NOON))


def private_key(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    loaded = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


def claims(**overrides: Any) -> dict[str, Any]:
    """Identity's claims for ada at noon, with ``overrides`` (None removes a claim)."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": ADA,
        "roles": [identity_model.CUSTOMER],
        "iat": int(NOON.timestamp()),
        "exp": int((NOON + LIFETIME).timestamp()),
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def es256(key: SigningKey, payload: Mapping[str, Any], **header: Any) -> str:
    """A token signed with ``key`` like identity signs, but with any claims and header."""
    return jwt.encode(
        dict(payload), private_key(key), algorithm="ES256", headers={"kid": key.kid, **header}
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(
    header: Mapping[str, Any], payload: Mapping[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWT assembled without a JOSE library, signature and all."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def hmac_sha256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def garbage_signature(data: bytes) -> bytes:
    return b"not a signature"


def with_part(token: str, index: int, part: str) -> str:
    parts = token.split(".")
    parts[index] = part
    return ".".join(parts)


async def refused(verifier: TokenVerifier, token: str) -> AgoraError:
    with pytest.raises(AgoraError) as raised:
        await verifier.verify(token)
    return raised.value


# The happy path


async def test_a_valid_token_names_the_user_and_the_roles_it_grants(harness: Harness) -> None:
    caller = await harness.verifier.verify(harness.token(roles=("admin", "customer")))

    assert caller == Caller(ADA, frozenset({"admin", "customer"}), CallerKind.USER)
    assert caller.is_admin
    assert not caller.is_service


def test_the_issuer_checked_is_the_one_identity_signs_with() -> None:
    assert ISSUER == identity_model.ISSUER
    assert ADMIN == identity_model.ADMIN


async def test_the_first_token_fetches_the_keys_and_later_ones_use_the_cache(
    harness: Harness,
) -> None:
    for _ in range(5):
        await harness.verifier.verify(harness.token())

    assert harness.jwks.calls == 1
    assert harness.cache.kids == {harness.key.kid}


async def test_caller_reads_the_token_from_the_calls_metadata(harness: Harness) -> None:
    metadata = [("x-request-id", "r1"), ("authorization", f"Bearer {harness.token()}")]

    assert await harness.verifier.caller(metadata) == Caller.user(ADA, ["customer"])
    assert await harness.verifier.caller([("x-request-id", "r1")]) is None
    assert harness.jwks.calls == 1


# Times and clock skew


@pytest.mark.parametrize(
    ("seconds_after_expiry", "accepted"),
    [(-1, True), (0, True), (LEEWAY - 1, True), (LEEWAY, False), (LEEWAY + 3600, False)],
)
async def test_an_expired_token_is_accepted_only_within_the_leeway(
    harness: Harness, seconds_after_expiry: float, accepted: bool
) -> None:
    harness.wall.now = (NOON + LIFETIME).timestamp() + seconds_after_expiry
    token = harness.token()

    if accepted:
        assert (await harness.verifier.verify(token)).subject == ADA
    else:
        error = await refused(harness.verifier, token)
        assert isinstance(error, AccessTokenExpired)
        assert error.code is grpc.StatusCode.UNAUTHENTICATED
        assert error.reason == "ACCESS_TOKEN_EXPIRED"


@pytest.mark.parametrize(
    ("seconds_early", "accepted"), [(LEEWAY, True), (LEEWAY + 1, False), (3600, False)]
)
async def test_a_token_issued_in_the_future_is_accepted_only_within_the_leeway(
    harness: Harness, seconds_early: float, accepted: bool
) -> None:
    harness.wall.now = NOON.timestamp() - seconds_early
    token = harness.token()

    if accepted:
        assert (await harness.verifier.verify(token)).subject == ADA
    else:
        error = await refused(harness.verifier, token)
        assert isinstance(error, AccessTokenInvalid)
        assert "not valid yet" in error.message


@pytest.mark.parametrize(("nbf_ahead", "accepted"), [(LEEWAY, True), (LEEWAY + 1, False)])
async def test_a_token_not_valid_before_a_later_time_waits_for_it(
    harness: Harness, nbf_ahead: float, accepted: bool
) -> None:
    token = es256(harness.key, claims(nbf=NOON.timestamp() + nbf_ahead))

    if accepted:
        assert (await harness.verifier.verify(token)).subject == ADA
    else:
        assert isinstance(await refused(harness.verifier, token), AccessTokenInvalid)


def test_the_leeway_is_bounded(harness: Harness) -> None:
    TokenVerifier(harness.cache, leeway=0)
    TokenVerifier(harness.cache, leeway=MAX_LEEWAY)
    for leeway in (-1, MAX_LEEWAY + 1, float("nan")):
        with pytest.raises(ValueError, match="leeway"):
            TokenVerifier(harness.cache, leeway=leeway)


# Forgeries and tokens that are not identity's


async def test_a_token_of_another_issuer_is_refused(harness: Harness) -> None:
    other = JwtTokenSigner(issuer="someone.else")
    token = other.sign(AccessToken("ada", ("admin",), NOON, NOON + LIFETIME), harness.key)

    error = await refused(harness.verifier, token)

    assert isinstance(error, AccessTokenInvalid)
    assert error.reason == "ACCESS_TOKEN_INVALID"
    assert "not issued by identity" in error.message


async def test_hs256_keyed_with_the_public_key_is_refused(harness: Harness) -> None:
    # The classic confusion: a verifier that lets the header pick the algorithm would use
    # the published public key as an HMAC secret, which the attacker knows too.
    await harness.verifier.verify(harness.token())  # the key is cached: nothing else fails
    public = private_key(harness.key).public_key()
    for secret in (
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(harness.key.public_jwk).encode(),
    ):
        forged = hand_made(
            {"alg": "HS256", "typ": "JWT", "kid": harness.key.kid},
            claims(roles=[ADMIN]),
            hmac_sha256(secret),
        )

        error = await refused(harness.verifier, forged)

        assert isinstance(error, AccessTokenInvalid)
        assert "not signed with ES256" in error.message


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_an_unsigned_token_is_refused_without_asking_identity(
    harness: Harness, alg: str
) -> None:
    forged = hand_made({"alg": alg, "typ": "JWT", "kid": harness.key.kid}, claims(), lambda _: b"")

    assert isinstance(await refused(harness.verifier, forged), AccessTokenInvalid)
    assert harness.jwks.calls == 0


async def test_rs256_under_a_published_kid_is_refused(harness: Harness) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": harness.key.kid})

    assert isinstance(await refused(harness.verifier, forged), AccessTokenInvalid)


async def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(
    harness: Harness, signer: JwtTokenSigner
) -> None:
    stranger = signer.new_key(NOON)
    forged = jwt.encode(
        claims(roles=[ADMIN]),
        private_key(stranger),
        algorithm="ES256",
        headers={"kid": harness.key.kid},
    )

    error = await refused(harness.verifier, forged)

    assert isinstance(error, AccessTokenInvalid)
    assert "signature" in error.message


async def test_a_tampered_signature_is_refused(harness: Harness) -> None:
    token = harness.token()
    signature = token.split(".")[2]
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]

    assert isinstance(
        await refused(harness.verifier, with_part(token, 2, flipped)), AccessTokenInvalid
    )


async def test_a_customer_cannot_make_itself_admin_by_editing_the_claims(
    harness: Harness,
) -> None:
    token = harness.token()
    promoted = b64url(json.dumps(claims(roles=[ADMIN, "customer"])).encode())

    error = await refused(harness.verifier, with_part(token, 1, promoted))

    assert isinstance(error, AccessTokenInvalid)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda key: "not-a-jwt", "not a JWT"),
        (lambda key: "a.b.c", "not a JWT"),
        (
            lambda key: hand_made({"alg": "ES256", "typ": "JWT"}, claims(), garbage_signature),
            "names no signing key",
        ),
        (lambda key: es256(key, claims(), kid=""), "names no signing key"),
        (
            lambda key: hand_made(
                {"alg": "ES256", "typ": "JWT", "kid": 7}, claims(), garbage_signature
            ),
            "not a JWT",  # PyJWT refuses a header whose kid is not a string
        ),
        (lambda key: es256(key, claims(), typ="at+jwt"), "`typ`"),
        (lambda key: es256(key, claims(exp=None)), "'exp' claim"),
        (lambda key: es256(key, claims(iat=None)), "'iat' claim"),
        (lambda key: es256(key, claims(sub=None)), "'sub' claim"),
        (lambda key: es256(key, claims(iss=None)), "'iss' claim"),
        (lambda key: es256(key, claims(aud="orders.agora")), "another audience"),
        (lambda key: es256(key, claims(sub="orders")), "subject is not a user"),
        (lambda key: es256(key, claims(sub="users/")), "subject is not a user"),
        (lambda key: es256(key, claims(sub="users/ada/orders/1")), "subject is not a user"),
        (lambda key: es256(key, claims(roles="admin")), "roles are not a list"),
        (lambda key: es256(key, claims(roles=[1])), "roles are not a list"),
        (lambda key: "x" * 9000, "too long"),
    ],
)
async def test_tokens_that_are_not_identitys_access_tokens_are_refused(
    harness: Harness, make: Callable[[SigningKey], str], why: str
) -> None:
    error = await refused(harness.verifier, make(harness.key))

    assert isinstance(error, AccessTokenInvalid)
    assert why in error.message


async def test_a_token_without_roles_grants_none(harness: Harness) -> None:
    caller = await harness.verifier.verify(es256(harness.key, claims(roles=None)))

    assert caller == Caller.user(ADA)


# The key cache


async def test_a_new_kid_fetches_the_keys_once_and_then_verifies(
    harness: Harness, signer: JwtTokenSigner
) -> None:
    await harness.verifier.verify(harness.token())
    rotated = signer.new_key(NOON)
    harness.jwks.publish(rotated, harness.key)
    harness.later(MIN_REFRESH)

    caller = await harness.verifier.verify(harness.token(key=rotated))

    assert caller.subject == ADA
    assert harness.jwks.calls == 2
    assert harness.cache.kids == {rotated.kid, harness.key.kid}
    await harness.verifier.verify(harness.token())  # the old key still verifies its tokens
    assert harness.jwks.calls == 2


async def test_a_kid_identity_does_not_publish_is_refused_after_one_fetch(
    harness: Harness, signer: JwtTokenSigner
) -> None:
    await harness.verifier.verify(harness.token())
    harness.later(MIN_REFRESH)

    error = await refused(harness.verifier, harness.token(key=signer.new_key(NOON)))

    assert isinstance(error, AccessTokenInvalid)
    assert "does not publish" in error.message
    assert harness.jwks.calls == 2


async def test_a_flood_of_unknown_kids_costs_identity_one_fetch_per_interval(
    harness: Harness,
) -> None:
    await harness.verifier.verify(harness.token())
    harness.later(MIN_REFRESH)
    garbage = [es256(harness.key, claims(), kid=f"made-up-{n}") for n in range(50)]

    results = await asyncio.gather(
        *(harness.verifier.verify(token) for token in garbage), return_exceptions=True
    )
    for token in garbage:  # and one after another, after the first fetch has finished
        assert isinstance(await refused(harness.verifier, token), AccessTokenInvalid)

    assert all(isinstance(result, AccessTokenInvalid) for result in results)
    assert harness.jwks.calls == 2
    harness.later(MIN_REFRESH - 0.001)
    await refused(harness.verifier, garbage[0])
    assert harness.jwks.calls == 2
    harness.later(0.001)
    await refused(harness.verifier, garbage[0])
    assert harness.jwks.calls == 3


async def test_callers_arriving_during_a_fetch_share_it(harness: Harness) -> None:
    harness.jwks.gate = asyncio.Event()
    calls = [asyncio.create_task(harness.verifier.verify(harness.token())) for _ in range(10)]
    await asyncio.sleep(0)

    harness.jwks.gate.set()
    callers = await asyncio.gather(*calls)

    assert {caller.subject for caller in callers} == {ADA}
    assert harness.jwks.calls == 1


async def test_a_caller_that_gives_up_does_not_cancel_the_fetch_for_the_others(
    harness: Harness,
) -> None:
    harness.jwks.gate = asyncio.Event()
    impatient = asyncio.create_task(harness.verifier.verify(harness.token()))
    patient = asyncio.create_task(harness.verifier.verify(harness.token()))
    await asyncio.sleep(0)

    impatient.cancel()
    await asyncio.sleep(0)
    harness.jwks.gate.set()

    assert (await patient).subject == ADA
    assert impatient.cancelled()
    assert harness.jwks.calls == 1


async def test_identity_unreachable_with_an_unknown_kid_is_unavailable_not_unauthenticated(
    harness: Harness,
) -> None:
    harness.jwks.failure = Unavailable("identity is down")

    error = await refused(harness.verifier, harness.token())

    assert isinstance(error, JwksUnavailable)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.reason == "JWKS_UNAVAILABLE"
    assert error.retry_after == pytest.approx(MIN_REFRESH)
    # Within the interval the failure is reported again without asking identity.
    harness.later(2.0)
    error = await refused(harness.verifier, harness.token())
    assert isinstance(error, JwksUnavailable)
    assert error.retry_after == pytest.approx(MIN_REFRESH - 2.0)
    assert harness.jwks.calls == 1
    # Once identity answers again, the next attempt after the interval succeeds.
    harness.jwks.failure = None
    harness.later(MIN_REFRESH)
    assert (await harness.verifier.verify(harness.token())).subject == ADA
    assert harness.jwks.calls == 2


async def test_any_fetch_failure_counts_as_identity_being_unreachable(harness: Harness) -> None:
    harness.jwks.failure = ConnectionResetError("peer went away")

    assert isinstance(await refused(harness.verifier, harness.token()), JwksUnavailable)


async def test_stale_keys_are_fetched_again_and_keys_no_longer_published_are_dropped(
    harness: Harness, signer: JwtTokenSigner
) -> None:
    await harness.verifier.verify(harness.token())
    successor = signer.new_key(NOON)
    harness.jwks.publish(successor)
    harness.later(MAX_AGE - 1)
    await harness.verifier.verify(harness.token())
    assert harness.jwks.calls == 1

    harness.later(1)
    error = await refused(harness.verifier, harness.token())

    assert isinstance(error, AccessTokenInvalid)
    assert harness.jwks.calls == 2
    assert harness.cache.kids == {successor.kid}


async def test_known_keys_keep_working_while_identity_is_unreachable(harness: Harness) -> None:
    await harness.verifier.verify(harness.token())
    harness.jwks.failure = Unavailable("identity is down")
    harness.later(MAX_AGE)

    for _ in range(3):
        assert (await harness.verifier.verify(harness.token())).subject == ADA

    assert harness.jwks.calls == 2  # one attempt, then none until the interval has passed
    harness.later(MIN_REFRESH)
    await harness.verifier.verify(harness.token())
    assert harness.jwks.calls == 3


async def test_keys_other_than_es256_signing_keys_are_skipped(harness: Harness) -> None:
    es256_jwk = dict(harness.key.public_jwk)
    harness.jwks.jwks = [
        {"kid": "rsa", "kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {**es256_jwk, "kid": "p384", "crv": "P-384"},
        {**es256_jwk, "kid": "hs", "alg": "HS256"},
        {**es256_jwk, "kid": "enc", "use": "enc"},
        {**es256_jwk, "kid": "broken", "x": "AA"},
        {**es256_jwk, "kid": ""},
        es256_jwk,
    ]

    await harness.verifier.verify(harness.token())

    assert harness.cache.kids == {harness.key.kid}


async def test_a_key_set_without_a_usable_key_counts_as_a_failed_fetch(
    harness: Harness, signer: JwtTokenSigner
) -> None:
    await harness.verifier.verify(harness.token())
    harness.jwks.jwks = [{"kid": "rsa", "kty": "RSA", "n": "AQAB", "e": "AQAB"}]
    harness.later(MIN_REFRESH)

    error = await refused(harness.verifier, harness.token(key=signer.new_key(NOON)))

    assert isinstance(error, JwksUnavailable)
    assert harness.cache.kids == {harness.key.kid}


def test_the_cache_settings_are_checked() -> None:
    fetch = FakeJwks()
    for max_age in (0, -1):
        with pytest.raises(ValueError, match="max_age"):
            JwksCache(fetch, max_age=max_age)
    with pytest.raises(ValueError, match="min_refresh_interval"):
        JwksCache(fetch, min_refresh_interval=-1)


# The authorization metadata


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        (None, None),
        ([], None),
        ([("x-request-id", "r1")], None),
        ([("authorization", "Bearer abc.def.ghi")], "abc.def.ghi"),
        ([("authorization", "bearer abc.def.ghi")], "abc.def.ghi"),
        ([("authorization", "BEARER abc.def.ghi")], "abc.def.ghi"),
        ([("authorization", "  Bearer   abc.def.ghi  ")], "abc.def.ghi"),
        ([("Authorization", "Bearer abc-_~+/=")], "abc-_~+/="),
    ],
)
def test_bearer_token_reads_the_authorization_metadata(
    metadata: list[tuple[str, str | bytes]] | None, token: str | None
) -> None:
    assert bearer_token(metadata) == token


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ([("authorization", "Basic YWRhOnNlY3JldA==")], "scheme"),
        ([("authorization", "abc.def.ghi")], "scheme"),
        ([("authorization", "Bearer")], "missing"),
        ([("authorization", "Bearer ")], "missing"),
        ([("authorization", "Bearer abc def")], "characters"),
        ([("authorization", "Bearer abc\u00e9")], "characters"),
        ([("authorization", "Bearer " + "a" * 9000)], "too long"),
        ([("authorization", b"Bearer abc")], "not text"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "not several"),
    ],
)
def test_a_malformed_authorization_header_is_unauthenticated(
    metadata: list[tuple[str, str | bytes]], why: str
) -> None:
    with pytest.raises(MalformedAuthorization, match=why) as raised:
        bearer_token(metadata)

    assert raised.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.reason == "MALFORMED_AUTHORIZATION"


# Authorization


def rule(access: Access, *roles: str) -> MethodRule:
    return MethodRule("/agora.test.v1.TestService/Call", access, frozenset(roles), 2.0)


CUSTOMER = Caller.user(ADA, ["customer"])
ADMIN_USER = Caller.user("users/root", ["admin", "customer"])
NO_ROLES = Caller.user("users/bob")
ORDERS = Caller.service("orders")


@pytest.mark.parametrize(
    ("the_rule", "caller", "error"),
    [
        (rule(Access.PUBLIC), None, None),
        (rule(Access.PUBLIC), CUSTOMER, None),
        (rule(Access.PUBLIC), ORDERS, None),
        (rule(Access.AUTHENTICATED), None, AccessTokenMissing),
        (rule(Access.AUTHENTICATED), NO_ROLES, None),
        (rule(Access.AUTHENTICATED), CUSTOMER, None),
        (rule(Access.AUTHENTICATED), ORDERS, None),
        (rule(Access.ROLES, "admin"), None, AccessTokenMissing),
        (rule(Access.ROLES, "admin"), CUSTOMER, MissingRole),
        (rule(Access.ROLES, "admin"), NO_ROLES, MissingRole),
        (rule(Access.ROLES, "admin"), ORDERS, MissingRole),
        (rule(Access.ROLES, "admin"), ADMIN_USER, None),
        (rule(Access.ROLES, "admin", "customer"), CUSTOMER, None),
        (rule(Access.INTERNAL), None, AccessTokenMissing),
        (rule(Access.INTERNAL), ORDERS, None),
        (rule(Access.INTERNAL), CUSTOMER, InternalOnly),
        (rule(Access.INTERNAL), ADMIN_USER, InternalOnly),
        (rule(Access.INTERNAL, "admin"), ADMIN_USER, None),
        (rule(Access.INTERNAL, "admin"), CUSTOMER, InternalOnly),
        (rule(Access.INTERNAL, "admin"), ORDERS, None),
    ],
)
def test_authorize_applies_the_declared_rule(
    the_rule: MethodRule, caller: Caller | None, error: type[AgoraError] | None
) -> None:
    if error is None:
        authorize(the_rule, caller)
    else:
        with pytest.raises(error):
            authorize(the_rule, caller)


def test_no_credentials_is_unauthenticated_and_too_few_is_permission_denied() -> None:
    with pytest.raises(AccessTokenMissing) as missing:
        authorize(rule(Access.AUTHENTICATED), None)
    with pytest.raises(MissingRole) as role:
        authorize(rule(Access.ROLES, "admin", "support"), CUSTOMER)
    with pytest.raises(InternalOnly) as internal:
        authorize(rule(Access.INTERNAL, "admin"), CUSTOMER)
    with pytest.raises(InternalOnly) as service_only:
        authorize(rule(Access.INTERNAL), CUSTOMER)

    assert missing.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert missing.value.reason == "ACCESS_TOKEN_MISSING"
    assert missing.value.metadata == {"method": "/agora.test.v1.TestService/Call"}
    assert role.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert role.value.reason == "MISSING_ROLE"
    assert role.value.metadata == {
        "method": "/agora.test.v1.TestService/Call",
        "required_roles": "admin,support",
    }
    assert internal.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert internal.value.reason == "INTERNAL_ONLY"
    assert internal.value.metadata["required_roles"] == "admin"
    assert "required_roles" not in service_only.value.metadata


# The caller


@pytest.mark.parametrize(
    ("caller", "owner", "owns"),
    [
        (CUSTOMER, ADA, True),
        (CUSTOMER, "users/bob", False),
        (CUSTOMER, "users/adam", False),
        (NO_ROLES, ADA, False),
        (ADMIN_USER, ADA, True),
        (ADMIN_USER, "users/bob", True),
        (ORDERS, ADA, True),
        (Caller("orders", frozenset({"admin"}), CallerKind.USER), ADA, True),
    ],
)
def test_users_own_their_own_resources_and_admins_and_services_act_on_anyones(
    caller: Caller, owner: str, owns: bool
) -> None:
    assert caller.owns(owner) is owns


def test_a_caller_tells_its_kind_and_roles() -> None:
    assert CUSTOMER.kind is CallerKind.USER
    assert CUSTOMER.has_any(["admin", "customer"])
    assert not CUSTOMER.has_any(["admin"])
    assert not CUSTOMER.has_any([])
    assert not CUSTOMER.is_admin
    assert ORDERS.is_service
    assert ORDERS.roles == frozenset()
    assert not ORDERS.is_admin


# Settings


def test_settings_have_safe_defaults() -> None:
    assert load_auth_settings({}) == AuthSettings(
        leeway=30.0, jwks_max_age=300.0, jwks_min_refresh_interval=5.0, issuer="identity.agora"
    )


def test_settings_are_read_from_the_environment() -> None:
    settings = load_auth_settings(
        {
            "AGORA_AUTH_LEEWAY_SECONDS": "10",
            "AGORA_AUTH_JWKS_MAX_AGE_SECONDS": "60",
            "AGORA_AUTH_JWKS_MIN_REFRESH_SECONDS": "0",
            "AGORA_AUTH_ISSUER": "identity.example",
        }
    )

    assert settings == AuthSettings(10.0, 60.0, 0.0, "identity.example")


def test_unusable_settings_are_all_named() -> None:
    with pytest.raises(ConfigError) as raised:
        load_auth_settings(
            {
                "AGORA_AUTH_LEEWAY_SECONDS": "301",
                "AGORA_AUTH_JWKS_MAX_AGE_SECONDS": "0",
                "AGORA_AUTH_JWKS_MIN_REFRESH_SECONDS": "soon",
            }
        )

    message = str(raised.value)
    assert "AGORA_AUTH_LEEWAY_SECONDS='301'" in message
    assert "AGORA_AUTH_JWKS_MAX_AGE_SECONDS='0'" in message
    assert "AGORA_AUTH_JWKS_MIN_REFRESH_SECONDS='soon'" in message


async def test_a_token_verified_once_is_not_checked_again_until_it_expires(
    harness: Harness,
) -> None:
    token = harness.token()
    first = await harness.verifier.verify(token)
    assert await harness.verifier.verify(token) is first  # from the cache: no signature check
    harness.wall.now += LIFETIME.total_seconds() + LEEWAY + 1
    with pytest.raises(AccessTokenExpired):
        await harness.verifier.verify(token)  # a cached token still expires on time


async def test_the_cache_of_verified_tokens_is_bounded(signer: JwtTokenSigner) -> None:
    harness = Harness(signer, signer.new_key(NOON))
    verifier = TokenVerifier(harness.cache, leeway=LEEWAY, clock=harness.wall, cache_size=1)
    ada, bob = harness.token(), harness.token(issued=NOON + timedelta(seconds=1))
    first = await verifier.verify(ada)
    await verifier.verify(bob)  # pushes ada out
    again = await verifier.verify(ada)
    assert again == first
    assert again is not first  # verified afresh
