"""End-to-end tests: real service processes on loopback, driven like a user would."""
