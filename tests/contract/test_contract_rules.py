"""Rules every Agora contract follows, checked on the descriptors generated from protos/.

These are the promises other teams and the runtime rely on: retries are derived from
``idempotency_level``, so a method must declare it honestly.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor, descriptor_pb2

REPO = Path(__file__).resolve().parents[2]
BUF = REPO / ".venv" / "bin" / "buf"
MUTATING_PREFIXES = ("Create", "Update", "Delete")
READING_PREFIXES = ("Get", "List", "BatchGet")


def service_descriptors() -> list[descriptor.ServiceDescriptor]:
    services = []
    for path in sorted((REPO / "generated/python").glob("agora/*/v1/*_service_pb2.py")):
        module_name = ".".join(path.relative_to(REPO / "generated/python").with_suffix("").parts)
        file = importlib.import_module(module_name).DESCRIPTOR
        services.extend(file.services_by_name.values())
    return services


def methods() -> list[descriptor.MethodDescriptor]:
    return [m for s in service_descriptors() for m in s.methods]


def test_every_service_of_the_design_has_a_contract() -> None:
    names = {s.full_name for s in service_descriptors()}
    assert names == {
        "agora.catalog.v1.CatalogService",
        "agora.identity.v1.IdentityService",
        "agora.inventory.v1.InventoryService",
        "agora.notifications.v1.NotificationService",
        "agora.orders.v1.OrderService",
        "agora.payments.v1.PaymentService",
    }


@pytest.mark.parametrize("method", methods(), ids=lambda m: m.full_name)
def test_reads_are_marked_no_side_effects(method: descriptor.MethodDescriptor) -> None:
    if method.name.startswith(READING_PREFIXES):
        level = method.GetOptions().idempotency_level
        assert level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


@pytest.mark.parametrize("method", methods(), ids=lambda m: m.full_name)
def test_standard_mutations_take_a_request_id(method: descriptor.MethodDescriptor) -> None:
    if method.name.startswith(MUTATING_PREFIXES):
        assert "request_id" in method.input_type.fields_by_name


@pytest.mark.parametrize("method", methods(), ids=lambda m: m.full_name)
def test_a_request_id_makes_a_method_idempotent(method: descriptor.MethodDescriptor) -> None:
    if "request_id" in method.input_type.fields_by_name:
        level = method.GetOptions().idempotency_level
        assert level == descriptor_pb2.MethodOptions.IDEMPOTENT


@pytest.mark.parametrize("method", methods(), ids=lambda m: m.full_name)
def test_every_method_has_its_own_request_and_response(
    method: descriptor.MethodDescriptor,
) -> None:
    assert method.input_type.name == f"{method.name}Request"
    assert method.output_type.name == f"{method.name}Response"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the buf workspace and its released image, to break on purpose."""
    for item in ("buf.yaml", "protos", "third_party"):
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, tmp_path / item)
        else:
            shutil.copy(source, tmp_path / item)
    return tmp_path


def breaking(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", "protos", "--against", "protos/released.binpb"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_released_contracts_are_still_compatible(workspace: Path) -> None:
    result = breaking(workspace)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_breaking_gate_catches_a_changed_field_type(workspace: Path) -> None:
    proto = workspace / "protos/agora/catalog/v1/catalog.proto"
    text = proto.read_text()
    changed = text.replace("  string etag = 8", "  int64 etag = 8")
    assert changed != text
    proto.write_text(changed)
    result = breaking(workspace)
    assert result.returncode != 0
    assert 'changed type from "string" to "int64"' in result.stdout


def test_the_breaking_gate_catches_a_removed_rpc(workspace: Path) -> None:
    proto = workspace / "protos/agora/catalog/v1/catalog_service.proto"
    text = proto.read_text()
    start = text.index("  // Deletes a product.")
    end = text.index("  }\n", start) + len("  }\n")
    proto.write_text(text[:start] + text[end:])
    result = breaking(workspace)
    assert result.returncode != 0
    assert "DeleteProduct" in result.stdout


@pytest.mark.parametrize(
    ("service", "service_name"),
    [
        ("identity", "IdentityService"),
        ("inventory", "InventoryService"),
        ("orders", "OrderService"),
        ("payments", "PaymentService"),
    ],
)
def test_every_implemented_service_is_released_and_guarded(
    workspace: Path, service: str, service_name: str
) -> None:
    # Renaming a service is breaking once its contract is released.
    proto = workspace / f"protos/agora/{service}/v1/{service}_service.proto"
    if not proto.is_file():
        proto = next((workspace / f"protos/agora/{service}/v1").glob("*_service.proto"))
    text = proto.read_text()
    proto.write_text(
        text.replace(f"service {service_name} {{", f"service Renamed{service_name} {{")
    )
    result = breaking(workspace)
    assert result.returncode != 0, f"the gate does not guard {service}"
    assert service_name in result.stdout
