"""Plain-Python rules of notifications: no gRPC, no SQL, no generated code."""
