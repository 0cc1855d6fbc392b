"""Alembic environment for the catalog database; run through ``python -m catalog migrate``."""

from catalog.adapters.orm import metadata
from runtime.db import run_migrations_online

run_migrations_online(metadata)
