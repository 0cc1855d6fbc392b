"""Who is calling and whether they may: bearer access tokens checked against identity's keys.

Identity signs every access token (an ES256 JWT) with a P-256 key it publishes through
``IdentityService.GetJwks``. Every other service verifies tokens offline against those
keys, then applies the rule its contract declares for the method (:mod:`runtime.policy`)::

    keys = JwksCache(GrpcJwksFetcher(ClientFactory(), peer_address("identity")))
    verifier = TokenVerifier(keys)

    caller = await verifier.caller(context.invocation_metadata())  # None without a token
    authorize(rules[method], caller)  # raises Unauthenticated or PermissionDenied

A call goes through these steps:

1. :func:`bearer_token` takes the token from the ``authorization: Bearer <token>``
   metadata; a header that is there but not in that form is ``MALFORMED_AUTHORIZATION``.
2. :meth:`TokenVerifier.verify` reads the token's header. Only ``alg: ES256`` is accepted,
   whatever key the ``kid`` names, so neither ``none`` nor an HMAC "signed" with the public
   key gets through. The key comes from the :class:`JwksCache`, the signature and the
   issuer are checked with PyJWT, and ``exp``, ``iat`` and ``nbf`` against the clock
   with a bounded leeway for clock skew.
3. The :class:`JwksCache` holds identity's keys by ``kid``. It fetches them again when they
   are older than ``max_age``, or when a token names a ``kid`` it does not know (identity
   rotated its key), but never more than once per ``min_refresh_interval``, so a flood of
   made-up ``kid`` values costs identity one call. While identity cannot be reached,
   known keys keep working; a token with an unknown ``kid`` then fails with UNAVAILABLE
   (``JWKS_UNAVAILABLE``, with a ``RetryInfo``), because the token may well be valid.
4. :func:`authorize` applies the method's :class:`~runtime.policy.MethodRule` to the
   :class:`Caller`: no credentials where some are needed is UNAUTHENTICATED, credentials
   that are not enough are PERMISSION_DENIED. What a caller may see *within* a method
   (users see their own orders) is the servicer's business, through :meth:`Caller.owns`.

The reasons of the errors raised here, in the domain of the service that serves the call:

- ``MALFORMED_AUTHORIZATION``: the ``authorization`` metadata is not one ``Bearer <token>``;
- ``ACCESS_TOKEN_MISSING``: the method needs credentials and the call has none;
- ``ACCESS_TOKEN_INVALID``: the token is not one of identity's valid access tokens (not a
  JWT, another algorithm, an unknown key, a bad signature, another issuer, a token not
  valid yet, malformed claims);
- ``ACCESS_TOKEN_EXPIRED``: the token was valid but has expired: refresh it;
- ``MISSING_ROLE``: the method needs one of the roles in ``required_roles``;
- ``INTERNAL_ONLY``: the method is for other Agora services (and holders of
  ``required_roles``, if it lists any);
- ``JWKS_UNAVAILABLE``: identity's keys could not be fetched to check the token; retry.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from agora.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from runtime.clients import ClientFactory
from runtime.config import EnvReader, non_negative_float, positive_float
from runtime.errors import PermissionDenied, Unauthenticated, Unavailable
from runtime.policy import Access, MethodRule

log = logging.getLogger("agora.auth")

#: The ``iss`` claim of identity's access tokens.
ISSUER = "identity.agora"
#: The one signature algorithm accepted, whatever a token's header asks for.
ALGORITHM = "ES256"
#: The role that sees and changes every user's resources.
ADMIN = "admin"
#: The prefix of a user's resource name, the ``sub`` claim of its tokens.
USER_PREFIX = "users/"
#: Default tolerance, in seconds, for clocks that disagree with identity's.
DEFAULT_LEEWAY = 30.0
#: The largest tolerance a deployment may configure: a bigger skew is a broken clock.
MAX_LEEWAY = 300.0
#: Default age after which cached keys are fetched again, in seconds.
DEFAULT_JWKS_MAX_AGE = 300.0
#: Default shortest time between two fetches of the keys, in seconds.
DEFAULT_JWKS_MIN_REFRESH_INTERVAL = 5.0
#: Longer tokens are refused unread; identity's are a few hundred characters.
MAX_TOKEN_LENGTH = 8192
_MAX_KID_LENGTH = 256
#: RFC 6750's ``b64token``: the characters a bearer token may contain.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_JWK_MEMBERS = ("kid", "kty", "crv", "x", "y", "alg", "use")
_IDENTITY = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"]

#: Fetches identity's public keys as JWKs (RFC 7517 members: ``kid``, ``kty``, ``crv``, ...).
JwksFetcher = Callable[[], Awaitable[Sequence[Mapping[str, str]]]]


class MalformedAuthorization(Unauthenticated):
    """The ``authorization`` metadata is there but not a single ``Bearer <token>``."""

    reason = "MALFORMED_AUTHORIZATION"

    def __init__(self, why: str) -> None:
        super().__init__(f"send the access token as `authorization: Bearer <token>`: {why}")


class AccessTokenMissing(Unauthenticated):
    """The method needs credentials and the call carries none."""

    reason = "ACCESS_TOKEN_MISSING"

    def __init__(self, method: str) -> None:
        super().__init__(
            "this call needs an access token as `authorization: Bearer <token>`; log in first",
            metadata={"method": method},
        )


class AccessTokenInvalid(Unauthenticated):
    """The token is not a valid access token of identity's; logging in again gets one."""

    reason = "ACCESS_TOKEN_INVALID"

    def __init__(self, why: str) -> None:
        super().__init__(f"the access token is not valid: {why}; log in again")


class AccessTokenExpired(Unauthenticated):
    """The token was valid and has expired; refreshing it gets a new one."""

    reason = "ACCESS_TOKEN_EXPIRED"

    def __init__(self) -> None:
        super().__init__("the access token has expired; refresh it or log in again")


class MissingRole(PermissionDenied):
    """The method needs a role the caller's token does not grant."""

    reason = "MISSING_ROLE"

    def __init__(self, rule: MethodRule) -> None:
        roles = ",".join(sorted(rule.roles))
        super().__init__(
            f"this call needs one of the roles {roles}",
            metadata={"method": rule.method, "required_roles": roles},
        )


class InternalOnly(PermissionDenied):
    """The method is for other Agora services (and holders of the rule's roles, if any)."""

    reason = "INTERNAL_ONLY"

    def __init__(self, rule: MethodRule) -> None:
        roles = ",".join(sorted(rule.roles))
        metadata = {"method": rule.method}
        message = "this call is for other Agora services only"
        if roles:
            metadata["required_roles"] = roles
            message += f" and callers with one of the roles {roles}"
        super().__init__(message, metadata=metadata)


class JwksUnavailable(Unavailable):
    """Identity's keys could not be fetched, so the token can be neither accepted nor refused."""

    reason = "JWKS_UNAVAILABLE"

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "the keys that verify access tokens cannot be fetched from identity right now; "
            "retry later",
            retry_after=retry_after,
        )


class CallerKind(enum.Enum):
    """Whether a caller is a person with an account or another Agora service."""

    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user as its access token says, or another Agora service.

    Attributes:
        subject: the user's resource name (``users/{user}``), or the service's name.
        roles: the roles the access token grants; none for services.
        kind: user or service.
    """

    subject: str
    roles: frozenset[str] = frozenset()
    kind: CallerKind = CallerKind.USER

    @classmethod
    def user(cls, name: str, roles: Iterable[str] = ()) -> Caller:
        """A user, by resource name (``users/{user}``), with the roles its token grants."""
        return cls(name, frozenset(roles), CallerKind.USER)

    @classmethod
    def service(cls, name: str) -> Caller:
        """Another Agora service, by name (``orders``), as its client certificate names it."""
        return cls(name, frozenset(), CallerKind.SERVICE)

    @property
    def is_service(self) -> bool:
        return self.kind is CallerKind.SERVICE

    @property
    def is_admin(self) -> bool:
        return self.kind is CallerKind.USER and ADMIN in self.roles

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether the caller holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def owns(self, user_name: str) -> bool:
        """Whether the caller may see and change what belongs to ``user_name``.

        A user owns its own resources (orders, payments); an admin acts on everyone's. So
        does another Agora service: it calls on some user's behalf, and the contracts let
        services through wherever users are (``ACCESS_AUTHENTICATED``).
        """
        if self.is_service:
            return True
        return self.subject == user_name or self.is_admin


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` metadata; None without one.

    The scheme is compared without regard to case (RFC 7235).

    Raises:
        MalformedAuthorization: if the metadata is there more than once, uses another
            scheme, or holds no token or one with characters a bearer token cannot have.
    """
    values = [value for key, value in metadata or () if key.lower() == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise MalformedAuthorization("send one `authorization` header, not several")
    (value,) = values
    if not isinstance(value, str):
        raise MalformedAuthorization("the header is not text")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MalformedAuthorization("the scheme must be `Bearer`")
    token = token.strip()
    if not token:
        raise MalformedAuthorization("the token is missing")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedAuthorization("the token is too long")
    if not _B64TOKEN.fullmatch(token):
        raise MalformedAuthorization("the token has characters a bearer token cannot have")
    return token


def authorize(rule: MethodRule, caller: Caller | None) -> None:
    """Lets the call through if ``rule`` admits ``caller``; None means no credentials.

    ``ACCESS_PUBLIC`` admits anyone; ``ACCESS_AUTHENTICATED`` any user or service;
    ``ACCESS_ROLES`` users holding one of ``rule.roles``; ``ACCESS_INTERNAL`` services,
    and users holding one of ``rule.roles`` if it lists any.

    Raises:
        AccessTokenMissing: if the rule needs credentials and there are none.
        MissingRole: if an ``ACCESS_ROLES`` caller holds none of the rule's roles.
        InternalOnly: if an ``ACCESS_INTERNAL`` caller is a user without the rule's roles.
    """
    if rule.access is Access.PUBLIC:
        return
    if caller is None:
        raise AccessTokenMissing(rule.method)
    if rule.access is Access.AUTHENTICATED:
        return
    if rule.access is Access.ROLES:
        if not caller.has_any(rule.roles):
            raise MissingRole(rule)
        return
    if rule.access is Access.INTERNAL:
        if not (caller.is_service or caller.has_any(rule.roles)):
            raise InternalOnly(rule)
        return
    assert_never(rule.access)


class GrpcJwksFetcher:
    """Fetches identity's keys with ``IdentityService.GetJwks``: a :data:`JwksFetcher`.

    Args:
        factory: the client factory whose channel to identity the calls use.
        target: identity's address, such as :func:`runtime.config.peer_address` gives.
        timeout: the deadline of each call; None means the contract's default deadline.
    """

    def __init__(self, factory: ClientFactory, target: str, timeout: float | None = None):
        self._factory = factory
        self._target = target
        self._timeout = timeout

    async def __call__(self) -> list[dict[str, str]]:
        # Built per call, inside the running loop; the factory shares the channel.
        stub = self._factory.stub(
            identity_service_pb2_grpc.IdentityServiceStub, _IDENTITY, self._target
        )
        response = await stub.GetJwks(identity_service_pb2.GetJwksRequest(), timeout=self._timeout)
        return [json_web_key(key) for key in response.keys]


def json_web_key(key: identity_service_pb2.JsonWebKey) -> dict[str, str]:
    """The RFC 7517 members a ``JsonWebKey`` message sets, as a :data:`JwksFetcher` gives."""
    return {name: getattr(key, name) for name in _JWK_MEMBERS if getattr(key, name)}


class JwksCache:
    """Identity's public keys by ``kid``, fetched when stale or when a ``kid`` is unknown.

    Args:
        fetch: gets the current key set, such as :class:`GrpcJwksFetcher`.
        max_age: seconds after which keys are fetched again before use.
        min_refresh_interval: the shortest time between two fetches, successful or not.
        clock: monotonic seconds; tests move it by hand.
    """

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        max_age: float = DEFAULT_JWKS_MAX_AGE,
        min_refresh_interval: float = DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not max_age > 0:
            raise ValueError("max_age must be a positive number of seconds")
        if not min_refresh_interval >= 0:
            raise ValueError("min_refresh_interval must be a number of seconds >= 0")
        self._fetch = fetch
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_attempt_failed = False
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def kids(self) -> frozenset[str]:
        """The ids of the keys held now."""
        return frozenset(self._keys)

    async def key(self, kid: str) -> ec.EllipticCurvePublicKey:
        """The public key with id ``kid``, fetching the key set first if needed.

        Raises:
            AccessTokenInvalid: if identity does not publish the key.
            JwksUnavailable: if the key is unknown and the key set cannot be fetched.
        """
        key = self._keys.get(kid)
        if key is not None and not self._stale():
            return key
        if self._refreshing is not None or self._may_fetch():
            await self._refresh()
        key = self._keys.get(kid)
        if key is not None:
            return key  # possibly stale: better than refusing valid tokens while identity is down
        if self._last_attempt_failed:
            raise JwksUnavailable(retry_after=self._until_next_fetch())
        raise AccessTokenInvalid("it names a signing key identity does not publish")

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self._min_refresh_interval
        )

    def _until_next_fetch(self) -> float:
        if self._attempted_at is None:
            return 0.0
        return max(0.0, self._attempted_at + self._min_refresh_interval - self._clock())

    async def _refresh(self) -> None:
        # Every caller that arrives during a fetch joins it. The fetch runs as its own task,
        # in a fresh context: a caller that gives up does not cancel it for the others, and
        # the inbound deadline of whichever call started it does not cap it.
        if self._refreshing is None:
            self._attempted_at = self._clock()
            self._refreshing = asyncio.create_task(
                self._fetch_keys(), context=contextvars.Context()
            )
        await asyncio.shield(self._refreshing)

    async def _fetch_keys(self) -> None:
        try:
            keys = _parse_jwks(await self._fetch())
        except Exception:
            self._last_attempt_failed = True
            log.warning(
                "could not fetch the keys that verify access tokens; keeping %d known keys",
                len(self._keys),
                exc_info=True,
            )
        else:
            self._keys = keys
            self._fetched_at = self._clock()
            self._last_attempt_failed = False
        finally:
            self._refreshing = None


def _parse_jwks(jwks: Sequence[Mapping[str, str]]) -> dict[str, ec.EllipticCurvePublicKey]:
    """The ES256 signing keys of a key set by ``kid``; anything else in it is skipped."""
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for jwk in jwks:
        kid = jwk.get("kid", "")
        if (
            not kid
            or jwk.get("kty") != "EC"
            or jwk.get("crv") != "P-256"
            or jwk.get("alg", ALGORITHM) != ALGORITHM
            or jwk.get("use", "sig") != "sig"
        ):
            log.warning("skipping a published key that is not an ES256 signing key: %r", kid)
            continue
        # Only the public members: a JWK with a private part must not become a private key.
        public = {name: jwk.get(name, "") for name in ("kty", "crv", "x", "y")}
        try:
            key = ECAlgorithm.from_jwk(json.dumps(public))
        except jwt.InvalidKeyError:
            log.warning("skipping a published key that does not parse: %r", kid)
            continue
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[kid] = key
    if not keys:
        raise ValueError("identity published no ES256 signing key")
    return keys


class TokenVerifier:
    """Turns identity's access tokens into :class:`Caller` values.

    Args:
        keys: identity's public keys.
        issuer: the ``iss`` claim tokens must carry.
        leeway: seconds of clock skew tolerated on ``exp``, ``iat`` and ``nbf``, from 0 to
            :data:`MAX_LEEWAY`.
        audience: the ``aud`` claim tokens must carry; None (identity sets none) refuses
            tokens that have one.
        clock: the wall clock, in seconds since the Unix epoch; tests move it by hand.
        cache_size: verified tokens remembered (least recently used dropped first), so a
            token sent again is not checked again until it expires.
    """

    def __init__(
        self,
        keys: JwksCache,
        *,
        issuer: str = ISSUER,
        leeway: float = DEFAULT_LEEWAY,
        audience: str | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be from 0 to {MAX_LEEWAY:g} seconds")
        self._keys = keys
        self._issuer = issuer
        self._leeway = leeway
        self._audience = audience
        self._clock = clock
        # Tokens that verified, with their expiry: a client sends the same token with every
        # call until it expires, and checking an ES256 signature costs hundreds of
        # microseconds. A cached token still expires on time; access tokens are not revoked.
        self._verified: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._cache_size = cache_size

    async def caller(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Caller | None:
        """The caller a call's ``authorization`` metadata names; None if it has none.

        Raises:
            Unauthenticated: as :func:`bearer_token` and :meth:`verify` do.
            JwksUnavailable: as :meth:`verify` does.
        """
        token = bearer_token(metadata)
        return None if token is None else await self.verify(token)

    async def verify(self, token: str) -> Caller:
        """The user an access token names, with the roles it grants.

        Raises:
            AccessTokenInvalid: if the token is not a valid access token of identity's.
            AccessTokenExpired: if it expired more than the leeway ago.
            JwksUnavailable: if its key is unknown and identity cannot be asked.
        """
        cached = self._verified.get(token)
        if cached is not None:
            caller, expire_time = cached
            if self._clock() - self._leeway < expire_time:
                self._verified.move_to_end(token)
                return caller
            del self._verified[token]
        kid = self._checked_header(token)
        key = await self._keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                # The times are checked below, against this verifier's clock.
                options={
                    "require": ["iss", "sub", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise AccessTokenInvalid("its signature does not verify") from None
        except jwt.InvalidIssuerError:
            raise AccessTokenInvalid("it was not issued by identity") from None
        except jwt.InvalidAudienceError:
            raise AccessTokenInvalid("it is meant for another audience") from None
        except jwt.MissingRequiredClaimError as error:
            raise AccessTokenInvalid(f"it has no {error.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise AccessTokenInvalid("it does not verify") from None
        self._check_times(claims)
        caller = _caller_from(claims)
        self._verified[token] = (caller, float(claims["exp"]))
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return caller

    def _checked_header(self, token: str) -> str:
        """The ``kid`` of a token whose header is acceptable, before any key is looked up."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise AccessTokenInvalid("it is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AccessTokenInvalid("it is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise AccessTokenInvalid(f"it is not signed with {ALGORITHM}")
        typ = header.get("typ", "JWT")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise AccessTokenInvalid("its header's `typ` is not `JWT`")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_LENGTH:
            raise AccessTokenInvalid("its header names no signing key")
        return kid

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        expire_time, issue_time = claims["exp"], claims["iat"]
        not_before = claims.get("nbf", issue_time)
        if not all(_is_number(value) for value in (expire_time, issue_time, not_before)):
            raise AccessTokenInvalid("its times are not numbers of seconds")
        if now - self._leeway >= expire_time:
            raise AccessTokenExpired()
        if issue_time > now + self._leeway or not_before > now + self._leeway:
            raise AccessTokenInvalid("it is not valid yet (check the clocks)")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _caller_from(claims: Mapping[str, Any]) -> Caller:
    subject, roles = claims["sub"], claims.get("roles", [])
    if (
        not isinstance(subject, str)
        or not subject.startswith(USER_PREFIX)
        or "/" in subject.removeprefix(USER_PREFIX)
        or subject == USER_PREFIX
    ):
        raise AccessTokenInvalid("its subject is not a user")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AccessTokenInvalid("its roles are not a list of strings")
    return Caller.user(subject, roles)


@dataclass(frozen=True)
class AuthSettings:
    """How tokens are verified; read by :func:`load_auth_settings`."""

    #: Clock skew tolerated on token times (``AGORA_AUTH_LEEWAY_SECONDS``, default 30,
    #: at most 300).
    leeway: float = DEFAULT_LEEWAY
    #: Age after which identity's keys are fetched again (``AGORA_AUTH_JWKS_MAX_AGE_SECONDS``,
    #: default 300).
    jwks_max_age: float = DEFAULT_JWKS_MAX_AGE
    #: Shortest time between two fetches of the keys
    #: (``AGORA_AUTH_JWKS_MIN_REFRESH_SECONDS``, default 5).
    jwks_min_refresh_interval: float = DEFAULT_JWKS_MIN_REFRESH_INTERVAL
    #: The ``iss`` claim tokens must carry (``AGORA_AUTH_ISSUER``, default ``identity.agora``).
    issuer: str = ISSUER


def load_auth_settings(environ: Mapping[str, str] | None = None) -> AuthSettings:
    """Reads the token verification settings from ``environ`` (default: the environment).

    Raises:
        ConfigError: naming every variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    reader = EnvReader(env)
    settings = AuthSettings(
        leeway=reader.get("AGORA_AUTH_LEEWAY_SECONDS", DEFAULT_LEEWAY, _leeway),
        jwks_max_age=reader.get(
            "AGORA_AUTH_JWKS_MAX_AGE_SECONDS", DEFAULT_JWKS_MAX_AGE, positive_float
        ),
        jwks_min_refresh_interval=reader.get(
            "AGORA_AUTH_JWKS_MIN_REFRESH_SECONDS",
            DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
            non_negative_float,
        ),
        issuer=env.get("AGORA_AUTH_ISSUER") or ISSUER,
    )
    reader.raise_if_invalid()
    return settings


def _leeway(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= MAX_LEEWAY:  # also rejects NaN
        raise ValueError(f"must be a number of seconds from 0 to {MAX_LEEWAY:g}")
    return value
