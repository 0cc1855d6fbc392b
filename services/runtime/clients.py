"""Outbound calls: one channel per target, retries from the contract, propagated deadlines.

Services and tools build stubs through a :class:`ClientFactory`::

    clients = ClientFactory()
    catalog = clients.stub(catalog_service_pb2_grpc.CatalogServiceStub,
                           catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"],
                           peer_address("catalog"))
    response = await catalog.GetProduct(GetProductRequest(name="products/tea"))

Every channel made here:

- balances with ``round_robin`` over every address DNS returns for the target, and
  keeps idle connections alive with pings;
- retries UNAVAILABLE, with backoff and retry throttling, only on methods whose contract
  says ``idempotency_level`` is ``NO_SIDE_EFFECTS`` or ``IDEMPOTENT``; nothing else is
  ever retried, and nobody writes a list of retryable methods by hand;
- gives each call a deadline: the caller's ``timeout``, else the RPC's
  ``default_deadline`` from its contract (``agora.api.v1.policy``), capped by what
  remains of the inbound call being served minus a safety margin (gRPC Python does not
  propagate deadlines by itself). A call whose budget is already spent fails with
  DEADLINE_EXCEEDED without going out;
- raises :mod:`runtime.errors` classes (with the peer's ``ErrorInfo``) instead of
  ``grpc.RpcError``;
- is plaintext, or mutual TLS with ``AGORA_TLS=mtls``: a factory made without
  ``credentials`` uses :func:`runtime.tls.default_channel_credentials` (in a service
  process the service's own certificate, elsewhere the operator's).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
from google.protobuf import descriptor, descriptor_pb2

from runtime import context as request_context
from runtime.errors import DeadlineExceeded
from runtime.policy import DEFAULT_DEADLINE, default_deadline, method_path
from runtime.status import from_rpc_error
from runtime.tls import default_channel_credentials

StubT = TypeVar("StubT")

#: Deadline of a call when neither the caller, nor its contract, nor an inbound call sets one.
DEFAULT_TIMEOUT = DEFAULT_DEADLINE
#: Time kept back from the inbound deadline, so the callee's answer can still travel back.
DEADLINE_MARGIN = 0.02

_RETRY_SAFE = (
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
)


def retryable_methods(service: descriptor.ServiceDescriptor) -> list[str]:
    """The methods of ``service`` that its contract declares safe to retry."""
    return [
        method.name
        for method in service.methods
        if method.GetOptions().idempotency_level in _RETRY_SAFE
    ]


def service_config(service: descriptor.ServiceDescriptor, max_attempts: int = 4) -> dict[str, Any]:
    """The gRPC service config for calling ``service``: balancing, retries, throttling."""
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        # Stop retrying when more than half of recent calls failed (tokens refill at 0.1/success).
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        "methodConfig": [],
    }
    names = [
        {"service": service.full_name, "method": method} for method in retryable_methods(service)
    ]
    if names:
        config["methodConfig"].append(
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        )
    return config


def channel_options(service: descriptor.ServiceDescriptor) -> list[tuple[str, Any]]:
    """Channel arguments: retries on, the service config above, keepalive."""
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(service_config(service))),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ]


if TYPE_CHECKING:  # the stubs make it generic; the runtime class is not
    UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor


class DeadlineAndErrorsInterceptor(UnaryUnaryClientInterceptor):
    """Sets each call's deadline and turns failed calls into :mod:`runtime.errors` classes.

    Args:
        defaults: the deadline of each method (by path) whose caller sets none.
        fallback: the deadline of any other method.
    """

    def __init__(
        self, defaults: Mapping[str, float] | None = None, fallback: float = DEFAULT_TIMEOUT
    ) -> None:
        self._defaults = dict(defaults or {})
        self._fallback = fallback

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        default = self._defaults.get(_method_name(client_call_details.method), self._fallback)
        timeout = effective_timeout(client_call_details.timeout, default)
        if timeout <= 0:
            raise DeadlineExceeded(
                "no time left for this call within the inbound call's deadline",
                reason="DEADLINE_SPENT",
                metadata={"method": _method_name(client_call_details.method)},
            )
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=timeout,
            metadata=client_call_details.metadata,
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        call = await continuation(details, request)
        try:
            return await call
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error


def effective_timeout(requested: float | None, default: float) -> float:
    """The deadline for an outbound call: requested or default, capped by the inbound budget."""
    timeout = default if requested is None else requested
    remaining = request_context.time_remaining()
    if remaining is not None:
        timeout = min(timeout, remaining - DEADLINE_MARGIN)
    return timeout


def _method_name(method: str | bytes) -> str:
    return method.decode() if isinstance(method, bytes) else method


class _Default(enum.Enum):
    CREDENTIALS = "environment"


#: :class:`ClientFactory`'s default ``credentials``: as :func:`default_channel_credentials` says.
FROM_ENVIRONMENT = _Default.CREDENTIALS


class ClientFactory:
    """Builds stubs on shared channels, one channel per (target, service).

    Args:
        default_timeout: the deadline of every call whose caller sets none; by default
            each RPC's ``default_deadline`` from its contract.
        credentials: TLS credentials for every channel, or None for plaintext; by default
            those :func:`runtime.tls.default_channel_credentials` gives (plaintext unless
            ``AGORA_TLS=mtls``).

    Raises:
        runtime.config.ConfigError: by default, if the TLS settings or files are unusable.
    """

    def __init__(
        self,
        default_timeout: float | None = None,
        credentials: grpc.ChannelCredentials | _Default | None = FROM_ENVIRONMENT,
    ) -> None:
        self._default_timeout = default_timeout
        self._credentials = (
            default_channel_credentials() if credentials is FROM_ENVIRONMENT else credentials
        )
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def channel(self, service: descriptor.ServiceDescriptor, target: str) -> grpc.aio.Channel:
        """The channel for calling ``service`` at ``target`` (``host:port``; DNS-resolved)."""
        key = (target, service.full_name)
        channel = self._channels.get(key)
        if channel is None:
            address = (
                target if "://" in target or target.startswith("unix:") else f"dns:///{target}"
            )
            # The stubs type channel interceptors as a placeholder that needs a cast.
            interceptors = cast(
                list[grpc.aio.ClientInterceptor],
                [self._deadlines(service)],
            )
            options = channel_options(service)
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(
                    address, options=options, interceptors=interceptors
                )
            else:
                channel = grpc.aio.secure_channel(
                    address, self._credentials, options=options, interceptors=interceptors
                )
            self._channels[key] = channel
        return channel

    def _deadlines(self, service: descriptor.ServiceDescriptor) -> DeadlineAndErrorsInterceptor:
        if self._default_timeout is not None:
            return DeadlineAndErrorsInterceptor(fallback=self._default_timeout)
        return DeadlineAndErrorsInterceptor(
            {method_path(method): default_deadline(method) for method in service.methods}
        )

    def stub(
        self,
        stub_class: Callable[[grpc.aio.Channel], StubT],
        service: descriptor.ServiceDescriptor,
        target: str,
    ) -> StubT:
        """A generated stub for ``service`` at ``target`` on the shared channel."""
        return stub_class(self.channel(service, target))

    async def close(self) -> None:
        """Closes every channel; pending calls are cancelled."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(grace=None)
