"""Alembic environment for the identity database; run through ``python -m identity migrate``."""

from identity.adapters.orm import metadata
from runtime.db import run_migrations_online

run_migrations_online(metadata)
