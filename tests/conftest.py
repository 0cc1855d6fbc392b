"""Fixtures every test suite can use."""

pytest_plugins = ["tests.support.postgres"]
