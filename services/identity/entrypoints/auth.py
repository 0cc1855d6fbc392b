"""Who is calling: the bearer access token of a call, verified with identity's own keys.

This is the one place identity authenticates callers. When the runtime gains a policy
interceptor that verifies bearer tokens for every service (driven by the contracts), it
replaces :class:`BearerAuthenticator` and hands the servicer the same
:class:`~identity.domain.model.Caller`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from identity.domain import usecases
from identity.domain.model import Caller, TokenLifetimes
from identity.domain.ports import TokenSigner, UnitOfWork

_BEARER = "bearer "


def bearer_token(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` metadata, if any."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            if value[: len(_BEARER)].lower() == _BEARER:
                return value[len(_BEARER) :].strip() or None
            return None
    return None


class BearerAuthenticator:
    """Turns a call's bearer token into a :class:`Caller`, or fails with UNAUTHENTICATED."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        signer: TokenSigner,
        lifetimes: TokenLifetimes,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._signer = signer
        self._lifetimes = lifetimes
        self._clock = clock

    async def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        return await usecases.authenticate(
            self._uow(), self._signer, self._lifetimes, bearer_token(context), self._clock()
        )
