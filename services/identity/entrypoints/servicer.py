"""The thin gRPC adapter of identity: convert, call one use case, convert back.

No status codes here: domain and conversion errors are mapped by the runtime interceptor.
The runtime also authenticates GetUser's caller, with identity's own keys, as it does in
every service; the servicer tells the use case whom that caller may read
(:func:`runtime.access.restricted_to`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from agora.identity.v1 import identity_service_pb2 as pb
from agora.identity.v1 import identity_service_pb2_grpc
from identity.domain import usecases
from identity.domain.model import TokenLifetimes
from identity.domain.ports import PasswordHasher, TokenSigner, UnitOfWork
from identity.entrypoints import convert
from runtime.access import restricted_to

Context = grpc.aio.ServicerContext[Any, Any]


class IdentityServicer(identity_service_pb2_grpc.IdentityServiceServicer):
    """Serves ``agora.identity.v1.IdentityService``."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        signer: TokenSigner,
        lifetimes: TokenLifetimes,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._signer = signer
        self._lifetimes = lifetimes
        self._clock = clock

    async def SignUp(self, request: pb.SignUpRequest, context: Context) -> pb.SignUpResponse:
        command = convert.sign_up_command(request)
        user = await usecases.sign_up(self._uow(), self._hasher, command, self._clock())
        return pb.SignUpResponse(user=convert.user_to_proto(user))

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        command = convert.login_command(request)
        tokens = await usecases.login(
            self._uow(), self._hasher, self._signer, self._lifetimes, command, self._clock()
        )
        return convert.login_response(tokens)

    async def RefreshToken(
        self, request: pb.RefreshTokenRequest, context: Context
    ) -> pb.RefreshTokenResponse:
        command = convert.refresh_tokens_command(request)
        tokens = await usecases.refresh_tokens(
            self._uow(), self._signer, self._lifetimes, command, self._clock()
        )
        return convert.refresh_token_response(tokens)

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        user_id = convert.parse_user_name(request.name)
        user = await usecases.get_user(self._uow(), user_id, restricted_to=restricted_to())
        return pb.GetUserResponse(user=convert.user_to_proto(user))

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.GetJwksResponse:
        keys = await usecases.get_jwks(self._uow(), self._lifetimes, self._clock())
        return convert.jwks_response(keys)
