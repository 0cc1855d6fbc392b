"""The payments service: payment intents for orders, authorized, captured, voided, refunded.

Layers (dependencies point inward): ``domain`` (plain Python rules, the payment state
machine and use cases), ``adapters`` (SQLAlchemy and the card processor), ``entrypoints``
(the gRPC servicer and protobuf conversion); ``bootstrap`` wires them together and
``__main__`` serves them.
"""
