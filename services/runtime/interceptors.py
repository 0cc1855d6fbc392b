"""The runtime's server interceptor: request decoding, error mapping, deadlines and access logs.

:class:`RuntimeInterceptor` is installed first (outermost) by :func:`runtime.server.serve`.
It wraps the behaviour of every unary-unary handler, including whatever behaviour the
service's own interceptors return, so it sees the final outcome of each call:

- it decodes the request itself, so a body that is not a valid message becomes
  INVALID_ARGUMENT (reason ``MALFORMED_REQUEST``) instead of grpc.aio's UNKNOWN;
- it admits or refuses the call by its contract's access rule before even decoding the
  request (:mod:`runtime.access`: bearer tokens, UNAUTHENTICATED or PERMISSION_DENIED,
  rate limits on public methods), and the handler finds its caller in
  :func:`runtime.access.current_caller`;
- it checks the decoded request against the contract's ``buf.validate`` rules
  (:mod:`runtime.validation`) before the handler runs: a broken rule is INVALID_ARGUMENT
  with a ``BadRequest`` naming each broken rule's field, and the handler never sees it;
- it records the inbound deadline for :mod:`runtime.clients` to propagate; a call that
  arrives without one is bounded by its RPC's ``default_deadline`` from the contract
  (``agora.api.v1.policy``) and ends DEADLINE_EXCEEDED when that passes;
- an :class:`~runtime.errors.AgoraError` becomes its status code with ``ErrorInfo`` and
  ``BadRequest`` details; any other exception becomes INTERNAL with a generic message
  and the traceback in the log, never the exception text;
- it logs one JSON line per call: method, code, reason, duration;
- it counts calls in flight, so shutdown can wait for every handler to finish before
  closing what they use: ``server.stop`` returns as soon as an aborted call's status
  is sent, while its handler may still be running (grpc#37239).

Streaming handlers (health ``Watch``, reflection) are passed through untouched: wrapping
them is what breaks the asyncio health ``Watch`` (grpc#28728).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import grpc
from google.protobuf.message import DecodeError, Message

from runtime import context as request_context
from runtime import validation
from runtime.access import AccessControl
from runtime.errors import AgoraError, DeadlineExceeded, Internal, InvalidArgument
from runtime.policy import MethodRule
from runtime.status import to_grpc_status

access_log = logging.getLogger("agora.access")
log = logging.getLogger("agora.runtime")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
if TYPE_CHECKING:  # the stubs make these generic; the runtime classes are not
    Handler = grpc.RpcMethodHandler[Any, Any]
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    ServerInterceptor = grpc.aio.ServerInterceptor
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]


class RuntimeInterceptor(ServerInterceptor):
    """Decodes requests, maps errors to rich statuses and logs one line per call.

    Args:
        domain: the ``ErrorInfo.domain`` of this service's errors, such as ``catalog.agora``.
        rules: the contract's rule of each method served (:func:`runtime.policy.method_rules`).
        access: admits or refuses each call before its request is decoded; None lets every
            call through (tests of other behaviour).
        access_log_enabled: log a line per call at INFO (the default); off for benchmarks only.
    """

    def __init__(
        self,
        domain: str,
        rules: Mapping[str, MethodRule] | None = None,
        *,
        access: AccessControl | None = None,
        access_log_enabled: bool = True,
    ) -> None:
        self._domain = domain
        self._rules = dict(rules or {})
        self._access = access
        self._access_log_enabled = access_log_enabled
        # method -> (handler returned by the chain, our wrapper of it). The chain usually
        # returns the same handler object for a method, so the wrapper is built once.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        """Calls whose handler has not finished yet."""
        return self._in_flight

    async def wait_idle(self, limit: float) -> bool:
        """Waits up to ``limit`` seconds for every handler to finish; True if they did."""
        try:
            await asyncio.wait_for(self._idle.wait(), limit)
        except TimeoutError:
            return False
        return True

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        # An unknown method yields None here despite the stubs; grpc answers UNIMPLEMENTED.
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        behavior = cast(Behavior, handler.unary_unary)
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(method, behavior, handler.request_deserializer),
            request_deserializer=None,  # we decode, so a malformed body is INVALID_ARGUMENT
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self,
        method: str,
        behavior: Behavior,
        deserialize: Callable[[bytes], Any] | None,
    ) -> Behavior:
        domain = self._domain
        access = self._access
        logging_on = self._access_log_enabled
        rule = self._rules.get(method)
        default_deadline = rule.default_deadline if rule is not None else None

        async def handle(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            self._in_flight += 1
            self._idle.clear()
            remaining = context.time_remaining()
            # Without a deadline from the caller, the contract's default bounds the call.
            bound = default_deadline if remaining is None else None
            request_context.set_inbound_call(
                method, remaining if bound is None else bound, context.invocation_metadata
            )
            code = grpc.StatusCode.OK
            reason = ""
            try:
                if access is not None:
                    await access.admit(method, context)
                request = _decode(raw, deserialize)
                if isinstance(request, Message):
                    validation.check(request)
                if bound is None:
                    return await behavior(request, context)
                return await _bounded(behavior(request, context), bound, method)
            except AgoraError as error:
                code, reason = error.code, error.reason
                await _abort(context, error, domain)
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                log.exception("unhandled error in %s", method, extra={"method": method})
                internal = Internal("internal error; the server logged the details")
                code, reason = internal.code, internal.reason
                await _abort(context, internal, domain)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()
                if logging_on:
                    access_log.info(
                        "rpc",
                        extra={
                            "method": method,
                            "code": code.name,
                            "reason": reason,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        },
                    )

        return handle


async def _bounded(call: Awaitable[Any], seconds: float, method: str) -> Any:
    """Awaits ``call`` for at most ``seconds``; DeadlineExceeded (the contract's) after."""
    timeout = asyncio.timeout(seconds)
    try:
        async with timeout:
            return await call
    except TimeoutError:
        if not timeout.expired():
            raise  # the handler's own timeout, not ours: its error as it is
        raise DeadlineExceeded(
            f"the call took longer than its default deadline of {seconds:g}s; "
            "set a deadline to wait longer",
            reason="DEFAULT_DEADLINE_EXCEEDED",
            metadata={"method": method, "default_deadline_seconds": f"{seconds:g}"},
        ) from None


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], error: AgoraError, domain: str
) -> None:
    status = to_grpc_status(error, domain)
    await context.abort(status.code, status.details, status.trailing_metadata)


def _decode(raw: Any, deserialize: Callable[[bytes], Any] | None) -> Any:
    if deserialize is None:
        return raw
    try:
        return deserialize(raw)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise InvalidArgument(
            "the request body is not a valid message of this method's request type",
            reason="MALFORMED_REQUEST",
            metadata={"decode_error": str(error)[:200]},
        ) from error
