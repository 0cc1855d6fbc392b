"""Alembic environment for the payments database; run through ``python -m payments migrate``."""

from payments.adapters.orm import metadata
from runtime.db import run_migrations_online

run_migrations_online(metadata)
