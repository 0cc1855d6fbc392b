"""Notifications' entrypoints: the servicer, the event handlers, the sender job."""
