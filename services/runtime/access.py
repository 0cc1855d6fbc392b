"""Access control for every call: who is calling, whether the contract lets them, how often.

:class:`AccessControl` runs in the runtime interceptor before a request is even decoded,
with the rule the method's contract declares (:mod:`runtime.policy`):

1. **Who is calling.** A call with ``authorization: Bearer <token>`` is the user the
   token names (:mod:`runtime.auth` verifies it against identity's keys), whatever
   certificate the connection presents: the token's user is the one authorized.
   Without a token:

   - in mTLS mode (``AGORA_TLS=mtls``, :mod:`runtime.tls`), the client certificate the
     handshake verified says who calls: ``spiffe://agora.local/service/<name>`` is the
     Agora service ``<name>`` (:meth:`Caller.service`), ``spiffe://agora.local/operator``
     is the :data:`OPERATOR`, and any other certificate is anonymous. Loopback is not
     trusted in this mode;
   - in plaintext, a call is anonymous, except for one concession to the laptop: with
     ``AGORA_AUTH_TRUST_LOOPBACK`` on (the default), a call from the same machine is the
     *local operator*: it counts as another Agora service and holds the ``admin`` role,
     so ``make run``, grpcurl and the services' own calls work with no ceremony. Calls
     from anywhere else are never trusted that way.
2. **Whether the rule admits them** (:func:`runtime.auth.authorize`): UNAUTHENTICATED
   without credentials where some are needed, PERMISSION_DENIED with credentials that
   are not enough. On ``ACCESS_PUBLIC`` methods a bad or expired token is ignored rather
   than refused, so a client holding a stale token can still log in or refresh it.
3. **How often** (:mod:`runtime.ratelimit`): each caller of an ``ACCESS_PUBLIC`` method
   (by token subject, else by network address) gets a token bucket;
   RESOURCE_EXHAUSTED ``RATE_LIMITED`` with ``RetryInfo`` past it. Services and the
   operators are not limited.

The caller is then available to the handler through :func:`current_caller`, which is
how services apply finer rules, such as "users see their own orders unless admin"
(:meth:`runtime.auth.Caller.owns`).
"""

from __future__ import annotations

import contextvars
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from runtime.auth import (
    ADMIN,
    USER_PREFIX,
    AuthSettings,
    Caller,
    CallerKind,
    JwksCache,
    JwksFetcher,
    TokenVerifier,
    authorize,
    bearer_token,
)
from runtime.errors import Unauthenticated
from runtime.policy import Access, MethodRule
from runtime.ratelimit import RateLimiter, peer_key
from runtime.tls import OPERATOR_ID, peer_spiffe_id, service_of

#: A call from this machine without a token while loopback is trusted (plaintext mode).
LOCAL_OPERATOR = Caller("local-operator", frozenset({ADMIN}), CallerKind.SERVICE)
#: A call without a token over the operator's certificate (mTLS mode): the counterpart of
#: :data:`LOCAL_OPERATOR`, so whoever holds that certificate (grpcurl, the launcher,
#: tests) may do what the local operator may.
OPERATOR = Caller("operator", frozenset({ADMIN}), CallerKind.SERVICE)

_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "agora_caller", default=None
)


def current_caller() -> Caller | None:
    """Who makes the call being served (None: anonymous, or outside a call)."""
    return _caller.get()


def set_current_caller(caller: Caller | None) -> None:
    """Records the caller of the call being served; the runtime interceptor's job."""
    _caller.set(caller)


def restricted_to() -> str | None:
    """The id of the only user whose resources the current caller may see and change;
    None if it may act for every user (admins, other services, the local operator), as
    :meth:`runtime.auth.Caller.owns` has it. Services pass it to their use cases as
    ``restricted_to``, which keep to that user.

    Raises:
        Unauthenticated: without a caller, which the runtime lets through only to public
            methods, where nothing is restricted to a user.
    """
    return restriction(current_caller())


def restriction(caller: Caller | None) -> str | None:
    """:func:`restricted_to` for ``caller``."""
    if caller is None:
        raise Unauthenticated(
            "this call needs an access token; log in first", reason="ACCESS_TOKEN_MISSING"
        )
    if caller.is_service or caller.is_admin:
        return None
    return caller.subject.removeprefix(USER_PREFIX)


@dataclass
class AccessControl:
    """Admits or refuses each call by its method's rule; see the module's description.

    Attributes:
        rules: the rule of each method served, by path; methods without one (health,
            reflection) are open to everyone and not limited.
        verifier: checks bearer tokens.
        limiter: the per-caller rate limit of public methods; None for no limit.
        trust_loopback: a call from loopback without a token is the local operator.
        certificates: a call without a token is who its verified client certificate
            names (mTLS mode).
    """

    rules: Mapping[str, MethodRule]
    verifier: TokenVerifier
    limiter: RateLimiter | None = None
    trust_loopback: bool = False
    certificates: bool = False

    async def admit(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Sets :func:`current_caller` for the call, or raises why it may not go ahead.

        Raises:
            runtime.errors.Unauthenticated: no or invalid credentials where needed.
            runtime.errors.PermissionDenied: credentials that the rule does not admit.
            runtime.errors.ResourceExhausted: past the rate limit of a public method.
            runtime.auth.JwksUnavailable: the token's key cannot be fetched right now.
        """
        rule = self.rules.get(method)
        if rule is None:
            set_current_caller(None)
            return
        caller = await self._caller(rule, context)
        authorize(rule, caller)
        set_current_caller(caller)
        if rule.access is Access.PUBLIC and self.limiter is not None:
            if caller is None:
                self.limiter.check(peer_key(context.peer()), method)
            elif not caller.is_service:
                self.limiter.check(caller.subject, method)

    async def _caller(
        self, rule: MethodRule, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Caller | None:
        metadata = context.invocation_metadata()
        try:
            token = bearer_token(metadata)
            if token is not None:
                return await self.verifier.verify(token)
        except Unauthenticated:
            if rule.access is Access.PUBLIC:
                return None  # a stale token must not stop a login or a refresh
            raise
        if self.certificates:
            return caller_from_certificate(context.auth_context())
        if self.trust_loopback and is_loopback(context.peer()):
            return LOCAL_OPERATOR
        return None


def caller_from_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> Caller | None:
    """The caller a call's verified client certificate names; None for anyone else."""
    spiffe = peer_spiffe_id(auth_context)
    if spiffe is None:
        return None
    if spiffe == OPERATOR_ID:
        return OPERATOR
    service = service_of(spiffe)
    return None if service is None else Caller.service(service)


def access_control(
    rules: Mapping[str, MethodRule],
    jwks: JwksFetcher,
    settings: AuthSettings,
    *,
    rate_per_second: float,
    burst: int,
    trust_loopback: bool,
    certificates: bool = False,
    clock: Callable[[], float] = time.time,
) -> AccessControl:
    """The access control of a service process: identity's keys as ``jwks`` fetches them,
    and a rate limiter unless ``rate_per_second`` is 0; ``certificates`` in mTLS mode."""
    keys = JwksCache(
        jwks,
        max_age=settings.jwks_max_age,
        min_refresh_interval=settings.jwks_min_refresh_interval,
    )
    verifier = TokenVerifier(keys, issuer=settings.issuer, leeway=settings.leeway, clock=clock)
    limiter = RateLimiter(rate_per_second, burst) if rate_per_second > 0 else None
    return AccessControl(rules, verifier, limiter, trust_loopback, certificates)


def is_loopback(peer: str) -> bool:
    """Whether a gRPC peer string (``ipv4:127.0.0.1:5123``, ``ipv6:[::1]:5123``) is local."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        host = rest.rsplit(":", 1)[0]
    elif kind == "ipv6" and rest.startswith("["):
        host = rest[1:].split("]", 1)[0]
    else:
        return kind == "unix"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
