"""Payments' adapters: the database and the card processor."""
