"""Alembic environment for the catalog database; run through ``python -m catalog migrate``."""

from runtime.db import run_migrations_online

from catalog.adapters.orm import metadata

run_migrations_online(metadata)
