"""The identity service: users, their credentials and the keys that sign access tokens.

Layers (dependencies point inward): ``domain`` (plain Python rules and use cases, with
ports for storage, password hashing and token signing), ``adapters`` (SQLAlchemy,
argon2id, ES256 JWTs), ``entrypoints`` (the gRPC servicer and protobuf conversion);
``bootstrap`` wires them together and ``__main__`` serves them.
"""
