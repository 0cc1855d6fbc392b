"""Benchmarks and profiling of the services against a bare gRPC echo server (see README.md)."""
