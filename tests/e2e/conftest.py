"""Fixtures of the end-to-end tests: the grpcurl binary they drive the services with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import GRPCURL


@pytest.fixture(scope="session")
def grpcurl_binary() -> Path:
    """The grpcurl from ``make tools``; skipped without it locally, a failure in CI."""
    if GRPCURL.is_file() and os.access(GRPCURL, os.X_OK):
        return GRPCURL
    reason = f"grpcurl is missing at {GRPCURL.relative_to(GRPCURL.parents[1])}: run `make tools`"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
