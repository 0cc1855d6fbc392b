"""The policy each RPC declares in its contract: complete for Agora, refused when unusable."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf import descriptor

import agora
from agora.api.v1 import policy_pb2
from runtime.config import ConfigError
from runtime.policy import (
    DEFAULT_DEADLINE,
    Access,
    PolicyError,
    default_deadline,
    method_rules,
    services_named,
)
from tests.support.policy_contract import contract, policy


def agora_services() -> list[descriptor.ServiceDescriptor]:
    """Every service of every contract under ``protos/agora``, from the generated code."""
    services = []
    for root in map(Path, agora.__path__):
        for path in sorted(root.rglob("*_service_pb2.py")):
            name = ".".join(("agora", *path.relative_to(root).with_suffix("").parts))
            services.extend(importlib.import_module(name).DESCRIPTOR.services_by_name.values())
    return services


def test_every_rpc_of_every_agora_contract_declares_its_policy() -> None:
    services = agora_services()
    assert {s.full_name for s in services} >= {
        "agora.catalog.v1.CatalogService",
        "agora.identity.v1.IdentityService",
        "agora.inventory.v1.InventoryService",
        "agora.notifications.v1.NotificationService",
        "agora.orders.v1.OrderService",
        "agora.payments.v1.PaymentService",
    }
    rules = method_rules(services)
    assert len(rules) == sum(len(s.methods) for s in services)
    get_order = rules["/agora.orders.v1.OrderService/GetOrder"]
    assert (get_order.access, get_order.default_deadline) == (Access.AUTHENTICATED, 2.0)
    reserve = rules["/agora.inventory.v1.InventoryService/ReserveStock"]
    assert reserve.access is Access.INTERNAL
    create = rules["/agora.catalog.v1.CatalogService/CreateProduct"]
    assert (create.access, create.roles) == (Access.ROLES, frozenset({"admin"}))


def test_an_rpc_without_a_policy_is_refused_by_name() -> None:
    declared = contract("Declared", policy(policy_pb2.ACCESS_PUBLIC))
    undeclared = contract("Undeclared", None, methods=("First", "Second"))
    with pytest.raises(PolicyError) as refused:
        method_rules(services_named([declared, undeclared]))
    message = str(refused.value)
    assert f"/{undeclared}/First: no access rule" in message
    assert f"/{undeclared}/Second: no access rule" in message
    assert declared not in message
    assert isinstance(refused.value, ConfigError)  # so a service exits 2, naming it


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        (policy(policy_pb2.ACCESS_UNSPECIFIED), "no access rule"),
        (policy(policy_pb2.ACCESS_ROLES), "ACCESS_ROLES without roles"),
        (policy(policy_pb2.ACCESS_PUBLIC, "admin"), "roles with ACCESS_PUBLIC"),
        (policy(policy_pb2.ACCESS_AUTHENTICATED, "admin"), "roles with ACCESS_AUTHENTICATED"),
        (policy(policy_pb2.ACCESS_PUBLIC, deadline=-1), "default_deadline must be positive"),
        (policy(7), "unknown access rule 7"),
    ],
)
def test_a_policy_that_contradicts_itself_is_refused(
    declared: policy_pb2.MethodPolicy, problem: str
) -> None:
    service = contract("Contradictory", declared)
    with pytest.raises(PolicyError, match=problem):
        method_rules(services_named([service]))


@pytest.mark.parametrize(
    "declared",
    [
        policy(policy_pb2.ACCESS_ROLES, "admin"),
        policy(policy_pb2.ACCESS_INTERNAL),
        policy(policy_pb2.ACCESS_INTERNAL, "admin"),
    ],
)
def test_roles_go_with_roles_and_internal_access(declared: policy_pb2.MethodPolicy) -> None:
    [rule] = method_rules(services_named([contract("Roles", declared)])).values()
    assert rule.roles == frozenset(declared.roles)


def test_the_default_deadline_is_the_contracts_else_the_runtimes() -> None:
    short = services_named([contract("Short", policy(policy_pb2.ACCESS_PUBLIC, deadline=0.25))])
    plain = services_named([contract("Plain", policy(policy_pb2.ACCESS_PUBLIC))])
    assert default_deadline(short[0].methods[0]) == 0.25
    assert default_deadline(plain[0].methods[0]) == DEFAULT_DEADLINE
