"""Notifications' adapters: the database, the mail sinks and the outbox."""
