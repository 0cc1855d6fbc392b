"""Orders' domain: plain Python, no gRPC, no SQL."""
