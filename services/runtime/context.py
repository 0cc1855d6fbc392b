"""Request-scoped values set by the server interceptors and read by runtime helpers.

The interceptors run each call's handler with these context variables set; anything the
handler awaits (use cases, repositories, outbound clients) sees them without arguments
being threaded through every layer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

#: Reads call metadata: pairs of key and value (grpc's stubs type it loosely).
MetadataReader = Callable[[], Any]

#: A W3C trace context ``traceparent``: version, trace id, parent id, flags.
TRACEPARENT_PATTERN = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
)

#: ``time.monotonic()`` value at which the inbound call's deadline passes, or None if unbounded.
_inbound_deadline: ContextVar[float | None] = ContextVar("agora_inbound_deadline", default=None)
#: The method being served, such as ``/agora.catalog.v1.CatalogService/GetProduct``.
_current_method: ContextVar[str | None] = ContextVar("agora_current_method", default=None)
#: Reads the inbound call's metadata; only called when a value from it is needed.
_inbound_metadata: ContextVar[MetadataReader | None] = ContextVar(
    "agora_inbound_metadata", default=None
)
#: A trace context set explicitly, by work that runs outside a call (a saga step).
_traceparent: ContextVar[str | None] = ContextVar("agora_traceparent", default=None)


def set_inbound_call(
    method: str,
    time_remaining: float | None,
    metadata: MetadataReader | None = None,
) -> None:
    """Records the call being served; called by the runtime interceptor only."""
    _current_method.set(method)
    _inbound_deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)
    _inbound_metadata.set(metadata)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the work in progress, if it has a valid one.

    Set explicitly with :func:`use_traceparent`, else the inbound call's ``traceparent``
    metadata (read only now, so calls that never ask pay nothing).
    """
    explicit = _traceparent.get()
    if explicit is not None:
        return explicit
    read = _inbound_metadata.get()
    for key, value in (read() if read is not None else None) or ():
        if key == "traceparent" and isinstance(value, str):
            return value if TRACEPARENT_PATTERN.match(value) else None
    return None


def use_traceparent(value: str | None) -> Token[str | None]:
    """Makes ``value`` the trace context of what runs next in this context."""
    return _traceparent.set(value if value and TRACEPARENT_PATTERN.match(value) else None)


def time_remaining() -> float | None:
    """Seconds left before the inbound call's deadline; None outside a call or without one."""
    deadline = _inbound_deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def current_method() -> str | None:
    """The method being served, or None outside a call."""
    return _current_method.get()


def reset_traceparent(token: Token[str | None]) -> None:
    """Restores the trace context :func:`use_traceparent` replaced."""
    _traceparent.reset(token)
