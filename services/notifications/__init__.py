"""The notifications service: messages to users about what happened in the shop.

It reacts to other services' events (sign-ups, confirmed and cancelled orders, refunds),
renders one notification per event and delivers it through a mail sink (a maildir or an
SMTP server). Layers (dependencies point inward): ``domain`` (plain Python rules, the
messages and use cases), ``adapters`` (SQLAlchemy, the mail sinks, the outbox),
``entrypoints`` (the gRPC servicer, the event handlers, the sender job and protobuf
conversion); ``bootstrap`` wires them together and ``__main__`` serves them.
"""
