"""Request-scoped values set by the server interceptors and read by runtime helpers.

The interceptors run each call's handler with these context variables set; anything the
handler awaits (use cases, repositories, outbound clients) sees them without arguments
being threaded through every layer.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

#: ``time.monotonic()`` value at which the inbound call's deadline passes, or None if unbounded.
_inbound_deadline: ContextVar[float | None] = ContextVar("agora_inbound_deadline", default=None)
#: The method being served, such as ``/agora.catalog.v1.CatalogService/GetProduct``.
_current_method: ContextVar[str | None] = ContextVar("agora_current_method", default=None)


def set_inbound_call(method: str, time_remaining: float | None) -> None:
    """Records the call being served; called by the runtime interceptor only."""
    _current_method.set(method)
    _inbound_deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)


def time_remaining() -> float | None:
    """Seconds left before the inbound call's deadline; None outside a call or without one."""
    deadline = _inbound_deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def current_method() -> str | None:
    """The method being served, or None outside a call."""
    return _current_method.get()
