"""Plain-Python rules of payments: no gRPC, no SQL, no generated code."""
