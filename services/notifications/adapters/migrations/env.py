"""Alembic environment of the notifications database (`python -m notifications migrate`)."""

from notifications.adapters.orm import metadata
from runtime.db import run_migrations_online

run_migrations_online(metadata)
