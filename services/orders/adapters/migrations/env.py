"""Alembic environment for the orders database; run through ``python -m orders migrate``."""

from orders.adapters.orm import metadata
from runtime.db import run_migrations_online

run_migrations_online(metadata)
