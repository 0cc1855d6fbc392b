"""docs/policies.md says what the protos declare: regenerating it changes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def policy_doc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("policy_doc", REPO / "scripts" / "policy_doc.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_policy_document_matches_the_contracts() -> None:
    written = (REPO / "docs" / "policies.md").read_text()
    assert written == policy_doc().document(), "run 'make generate' and commit docs/policies.md"


def test_every_rpc_is_in_the_document_with_its_access_rule() -> None:
    text = (REPO / "docs" / "policies.md").read_text()
    assert "| `PlaceOrder` | authenticated | - | idempotent (retried) | 10 s |" in text
    assert "| `ReserveStock` | internal | - |" in text
    assert "| `SetStock` | roles | `admin` |" in text
    assert "none (denied)" not in text
