"""The policy every RPC declares in its contract (``agora.api.v1.policy``), read at start-up.

``protos/agora/api/v1/policy.proto`` defines the method option; each RPC states who may
call it and its default deadline::

    rpc GetOrder(GetOrderRequest) returns (GetOrderResponse) {
      option idempotency_level = NO_SIDE_EFFECTS;
      option (agora.api.v1.policy) = {access: ACCESS_AUTHENTICATED default_deadline: {seconds: 2}};
    }

:func:`method_rules` turns the options of the services a process serves into one
:class:`MethodRule` per RPC, keyed by the gRPC method path (``/pkg.Service/Method``). It
denies by default: an RPC without an access rule, or with a rule that contradicts itself,
is a :class:`PolicyError`, and :func:`runtime.server.running` refuses to start the service.
Clients read the same options for their default deadlines (:func:`default_deadline`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import descriptor, descriptor_pool

from agora.api.v1 import policy_pb2
from runtime.config import ConfigError

#: The deadline of a call whose RPC declares none and whose caller sets none.
DEFAULT_DEADLINE = 5.0


class Access(enum.Enum):
    """Who may call an RPC; see ``agora.api.v1.Access``."""

    PUBLIC = policy_pb2.ACCESS_PUBLIC
    AUTHENTICATED = policy_pb2.ACCESS_AUTHENTICATED
    ROLES = policy_pb2.ACCESS_ROLES
    INTERNAL = policy_pb2.ACCESS_INTERNAL


@dataclass(frozen=True)
class MethodRule:
    """What one RPC's contract declares."""

    #: The gRPC method path, such as ``/agora.orders.v1.OrderService/GetOrder``.
    method: str
    access: Access
    #: The roles that grant access (``ROLES``), or that also grant it (``INTERNAL``).
    roles: frozenset[str]
    #: Seconds a call may take when its caller sets no deadline.
    default_deadline: float


class PolicyError(ConfigError):
    """A contract served by this process has RPCs without a usable policy."""


def method_path(method: descriptor.MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def declared_policy(method: descriptor.MethodDescriptor) -> policy_pb2.MethodPolicy | None:
    """The RPC's ``agora.api.v1.policy`` option; None if it declares none."""
    options = method.GetOptions()
    if not options.HasExtension(policy_pb2.policy):
        return None
    return options.Extensions[policy_pb2.policy]


def default_deadline(method: descriptor.MethodDescriptor) -> float:
    """The RPC's declared default deadline in seconds, else :data:`DEFAULT_DEADLINE`."""
    policy = declared_policy(method)
    if policy is None or not policy.HasField("default_deadline"):
        return DEFAULT_DEADLINE
    return policy.default_deadline.ToTimedelta().total_seconds()


def method_rules(services: Iterable[descriptor.ServiceDescriptor]) -> dict[str, MethodRule]:
    """One rule per RPC of ``services``.

    Raises:
        PolicyError: naming every RPC that declares no access rule, an unknown one, roles
            where its rule takes none, no roles for ``ACCESS_ROLES``, or a deadline that
            is not positive.
    """
    rules: dict[str, MethodRule] = {}
    problems: list[str] = []
    for service in services:
        for method in service.methods:
            path = method_path(method)
            problem = _problem(declared_policy(method))
            if problem:
                problems.append(f"{path}: {problem}")
                continue
            policy = declared_policy(method)
            assert policy is not None
            rules[path] = MethodRule(
                path, Access(policy.access), frozenset(policy.roles), default_deadline(method)
            )
    if problems:
        raise PolicyError(
            "every RPC must declare its policy, option (agora.api.v1.policy) with an access "
            "rule; access is denied by default: " + "; ".join(problems)
        )
    return rules


def services_named(
    names: Iterable[str], pool: descriptor_pool.DescriptorPool | None = None
) -> list[descriptor.ServiceDescriptor]:
    """The descriptors of the services with these full names (their modules imported)."""
    pool = pool or descriptor_pool.Default()
    return [pool.FindServiceByName(name) for name in names]


def _problem(policy: policy_pb2.MethodPolicy | None) -> str:
    if policy is None or policy.access == policy_pb2.ACCESS_UNSPECIFIED:
        return "no access rule"
    if policy.access not in {access.value for access in Access}:
        return f"unknown access rule {policy.access}"
    if policy.access == policy_pb2.ACCESS_ROLES and not policy.roles:
        return "ACCESS_ROLES without roles"
    takes_no_roles = (policy_pb2.ACCESS_PUBLIC, policy_pb2.ACCESS_AUTHENTICATED)
    if policy.roles and policy.access in takes_no_roles:
        return f"roles with {policy_pb2.Access.Name(policy.access)}, which takes none"
    if policy.HasField("default_deadline") and (
        policy.default_deadline.ToTimedelta().total_seconds() <= 0
    ):
        return "default_deadline must be positive"
    return ""
