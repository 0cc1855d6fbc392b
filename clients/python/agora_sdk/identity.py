"""A client of identity: users, credentials and the keys that sign access tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.identity.v1 import identity_service_pb2 as pb
from agora.identity.v1 import identity_service_pb2_grpc, user_pb2
from agora_sdk.base import ServiceClient

if TYPE_CHECKING:
    import grpc

    from agora.identity.v1.identity_service_pb2_grpc import IdentityServiceAsyncStub


class IdentityClient(ServiceClient["IdentityServiceAsyncStub"]):
    """Calls ``agora.identity.v1.IdentityService``; see :class:`ServiceClient` for the arguments.

    ``sign_up`` and ``get_user`` return the ``User``. ``login``, ``refresh_token`` and
    ``get_jwks`` answer with more than one resource, so they return the whole response
    (the tokens and their expiry times; the keys and their JSON form). ``get_user`` needs
    a client built with ``token=`` (or :meth:`with_token`) holding an access token.
    """

    service = "identity"
    service_descriptor = pb.DESCRIPTOR.services_by_name["IdentityService"]

    def _new_stub(self, channel: grpc.aio.Channel) -> IdentityServiceAsyncStub:
        return identity_service_pb2_grpc.IdentityServiceStub(channel)

    async def sign_up(
        self, request: pb.SignUpRequest, *, timeout: float | None = None
    ) -> user_pb2.User:
        return (await self._call(self._stub.SignUp, request, timeout)).user

    async def login(
        self, request: pb.LoginRequest, *, timeout: float | None = None
    ) -> pb.LoginResponse:
        return await self._call(self._stub.Login, request, timeout)

    async def refresh_token(
        self, request: pb.RefreshTokenRequest, *, timeout: float | None = None
    ) -> pb.RefreshTokenResponse:
        return await self._call(self._stub.RefreshToken, request, timeout)

    async def get_user(
        self, request: pb.GetUserRequest, *, timeout: float | None = None
    ) -> user_pb2.User:
        return (await self._call(self._stub.GetUser, request, timeout)).user

    async def get_jwks(
        self, request: pb.GetJwksRequest, *, timeout: float | None = None
    ) -> pb.GetJwksResponse:
        return await self._call(self._stub.GetJwks, request, timeout)
