"""Alembic environment for the inventory database; run through ``python -m inventory migrate``."""

from inventory.adapters.orm import metadata
from runtime.db import run_migrations_online

run_migrations_online(metadata)
