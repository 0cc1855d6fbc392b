"""The orders service: orders and the checkout saga that turns a placed order into a paid one.

Three layers, dependencies pointing inward: ``domain`` (the order, the checkout plan,
use cases, ports), ``adapters`` (SQLAlchemy, the other services' clients) and
``entrypoints`` (the gRPC servicer and the checkout runner).
"""
