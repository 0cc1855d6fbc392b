"""Alembic migrations of the orders database."""
