"""The inventory service: stock levels of catalog products and reservations of units.

Layers (dependencies point inward): ``domain`` (plain Python rules and use cases),
``adapters`` (SQLAlchemy, the catalog client), ``entrypoints`` (the gRPC servicer,
protobuf conversion and the expiry sweeper); ``bootstrap`` wires them together and
``__main__`` serves them.
"""
