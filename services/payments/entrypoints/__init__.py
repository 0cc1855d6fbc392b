"""Payments' gRPC entrypoint: the servicer and protobuf conversion."""
