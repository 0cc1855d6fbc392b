"""Made-up contracts with or without a policy, added to the default descriptor pool.

The runtime reads policies from the default pool (as generated code registers them), so
tests that need a contract the repository does not have (an RPC declaring no access rule,
a very short default deadline) add one here, under package ``agora.testing.v1``::

    service = contract("Undeclared", policy=None)   # -> "agora.testing.v1.UndeclaredService"

Each call adds a new file, so names never clash across tests.
"""

from __future__ import annotations

import itertools

from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, empty_pb2

from agora.api.v1 import policy_pb2

PACKAGE = "agora.testing.v1"
_files = itertools.count()
#: The files a made-up contract depends on must be in the pool first.
_DEPENDENCIES = (empty_pb2, policy_pb2)


def contract(
    name: str, policy: policy_pb2.MethodPolicy | None, *, methods: tuple[str, ...] = ("Do",)
) -> str:
    """Adds ``<name>Service`` whose methods take and return ``google.protobuf.Empty``.

    Every method gets ``policy`` (None: no policy option at all). Returns the service's
    full name.
    """
    number = next(_files)
    file = descriptor_pb2.FileDescriptorProto(
        name=f"agora/testing/v1/{name.lower()}_{number}.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/empty.proto", "agora/api/v1/policy.proto"],
    )
    service = file.service.add(name=f"{name}{number}Service")
    for method_name in methods:
        method = service.method.add(
            name=method_name,
            input_type=".google.protobuf.Empty",
            output_type=".google.protobuf.Empty",
        )
        if policy is not None:
            method.options.Extensions[policy_pb2.policy].CopyFrom(policy)
    descriptor_pool.Default().AddSerializedFile(file.SerializeToString())
    return f"{PACKAGE}.{service.name}"


def policy(access: int, *roles: str, deadline: float | None = None) -> policy_pb2.MethodPolicy:
    declared = policy_pb2.MethodPolicy(access=access, roles=roles)  # type: ignore[arg-type]
    if deadline is not None:
        declared.default_deadline.CopyFrom(duration_pb2.Duration())
        declared.default_deadline.FromNanoseconds(int(deadline * 1e9))
    return declared
