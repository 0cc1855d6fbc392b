"""Client retries come from the contract: only methods marked idempotent are ever retried."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2

from agora.catalog.v1 import catalog_service_pb2
from runtime.clients import channel_options, retryable_methods, service_config

CATALOG = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"]
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]


def _mixed_service() -> descriptor.ServiceDescriptor:
    """A service with one method of each idempotency level, built in a private pool."""
    levels = descriptor_pb2.MethodOptions
    file = descriptor_pb2.FileDescriptorProto(
        name="agora/test/v1/mixed.proto",
        package="agora.test.v1",
        syntax="proto3",
        message_type=[descriptor_pb2.DescriptorProto(name="Nothing")],
    )
    service = file.service.add(name="MixedService")
    for name, level in [
        ("Read", levels.NO_SIDE_EFFECTS),
        ("Put", levels.IDEMPOTENT),
        ("Charge", levels.IDEMPOTENCY_UNKNOWN),
        ("Poke", None),
    ]:
        method = service.method.add(
            name=name, input_type=".agora.test.v1.Nothing", output_type=".agora.test.v1.Nothing"
        )
        if level is not None:
            method.options.idempotency_level = level
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool.FindServiceByName("agora.test.v1.MixedService")


def _retried_names(config: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (name["service"], name["method"])
        for method_config in config["methodConfig"]
        if "retryPolicy" in method_config
        for name in method_config["name"]
    ]


def test_the_catalog_retries_exactly_its_idempotent_methods() -> None:
    safe = {
        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
        descriptor_pb2.MethodOptions.IDEMPOTENT,
    }
    declared = [m.name for m in CATALOG.methods if m.GetOptions().idempotency_level in safe]
    # The contract marks reads NO_SIDE_EFFECTS and request_id-carrying writes IDEMPOTENT.
    assert {"GetProduct", "ListProducts", "CreateProduct", "DeleteProduct"} <= set(declared)

    assert retryable_methods(CATALOG) == declared
    assert _retried_names(service_config(CATALOG)) == [
        ("agora.catalog.v1.CatalogService", name) for name in declared
    ]


def test_only_no_side_effects_and_idempotent_methods_are_retried() -> None:
    mixed = _mixed_service()

    assert retryable_methods(mixed) == ["Read", "Put"]
    assert _retried_names(service_config(mixed)) == [
        ("agora.test.v1.MixedService", "Read"),
        ("agora.test.v1.MixedService", "Put"),
    ]


def test_a_service_without_idempotency_levels_gets_no_retry_policy() -> None:
    config = service_config(HEALTH)

    assert retryable_methods(HEALTH) == []
    assert _retried_names(config) == []
    assert "retryPolicy" not in json.dumps(config)


def test_the_retry_policy_retries_unavailable_only_with_backoff() -> None:
    (method_config,) = service_config(CATALOG, max_attempts=3)["methodConfig"]
    policy = method_config["retryPolicy"]

    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert policy["maxAttempts"] == 3
    assert policy["backoffMultiplier"] > 1
    assert policy["initialBackoff"].endswith("s")
    assert policy["maxBackoff"].endswith("s")


def test_retry_throttling_is_always_configured() -> None:
    for service in (CATALOG, HEALTH, _mixed_service()):
        throttling = service_config(service)["retryThrottling"]
        assert 0 < throttling["maxTokens"] <= 1000
        assert throttling["tokenRatio"] > 0


def test_the_channel_enables_retries_and_carries_the_service_config_as_json() -> None:
    options = dict(channel_options(CATALOG))

    assert options["grpc.enable_retries"] == 1
    assert json.loads(options["grpc.service_config"]) == service_config(CATALOG)
