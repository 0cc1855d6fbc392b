"""Checks that a contract's ``buf.validate`` rules state what its service enforces itself.

The runtime rejects a request that breaks a rule before the servicer runs, so a rule
stricter than the service's own checks would refuse requests the contract documents as
valid, and a rule on a check whose contract documents its own reason (``INVALID_EMAIL``,
``INVALID_AMOUNT``...) would answer ``INVALID_ARGUMENT`` instead. Each service's
``test_validation_rules.py`` gives these helpers its requests and the function the
service runs on each before any use case::

    assert_rejected_alike(pb.GetOrderRequest(name="orders/O"), ["name"], check)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import descriptor
from google.protobuf.message import Message

from runtime import validation
from runtime.errors import InvalidArgument

#: What a service runs on a request before any use case; raises InvalidArgument if bad.
ServiceCheck = Callable[[Any], object]


def assert_rejected_alike(request: Message, fields: list[str], check: ServiceCheck) -> None:
    """The contract's rules reject ``request`` naming ``fields``; the service rejects it too.

    The service must name each of those fields, or a field inside it (a rule on a missing
    message is reported by the service on the message's own fields). It may name more.
    """
    assert [v.field for v in validation.violations(request)] == fields
    with pytest.raises(InvalidArgument) as rejected:
        check(request)
    named = [v.field for v in rejected.value.violations]
    for field in fields:
        assert any(n == field or n.startswith((f"{field}.", f"{field}[")) for n in named), (
            f"the contract names {field!r}; the service names {named}"
        )


def assert_accepted_alike(request: Message, check: ServiceCheck) -> None:
    """The service accepts ``request`` and it breaks none of the contract's rules."""
    check(request)
    assert validation.violations(request) == []


def assert_left_to_service(
    request: Message, fields: list[str], reason: str, check: ServiceCheck
) -> None:
    """No rule covers what is wrong with ``request``: the service rejects it, with ``reason``."""
    assert validation.violations(request) == []
    with pytest.raises(InvalidArgument) as rejected:
        check(request)
    assert rejected.value.reason == reason
    assert [v.field for v in rejected.value.violations] == fields


def request_types(service: descriptor.ServiceDescriptor) -> set[str]:
    """The full names of the request types of ``service``'s methods."""
    return {method.input_type.full_name for method in service.methods}


def requests_with_rules(service: descriptor.ServiceDescriptor) -> set[str]:
    """The names of ``service``'s request types that carry (or reach) ``buf.validate`` rules."""
    return {
        method.input_type.name
        for method in service.methods
        if validation.has_rules(method.input_type)
    }
