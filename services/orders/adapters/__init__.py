"""Orders' adapters: the database and the clients of catalog, inventory and payments."""
