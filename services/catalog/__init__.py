"""The catalog service: categories and products with their prices.

Layers (dependencies point inward): ``domain`` (plain Python rules and use cases),
``adapters`` (SQLAlchemy), ``entrypoints`` (the gRPC servicer and protobuf conversion);
``bootstrap`` wires them together and ``__main__`` serves them.
"""
