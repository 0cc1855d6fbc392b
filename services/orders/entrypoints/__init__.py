"""Orders' entrypoints: the gRPC servicer and the background checkout runner."""
