"""The catalog's domain events as the contract's messages (``agora.catalog.v1`` events.proto).

The unit of work writes them to the outbox at commit; categories and products are
converted as the servicer converts them (one message each, whoever reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agora.catalog.v1 import events_pb2
from catalog.adapters import orm
from catalog.domain.events import CategoryCreated, ProductCreated, ProductDeleted, ProductUpdated
from catalog.entrypoints.convert import category_to_proto, product_paths, product_to_proto
from runtime.outbox import OutboxWriter


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    """The messages an event publishes, each with the category's or product's name as its
    aggregate."""
    message: Message
    match event:
        case CategoryCreated(category=category):
            message = events_pb2.CategoryCreated(category=category_to_proto(category))
            return [(message, category.name)]
        case ProductCreated(product=product):
            message = events_pb2.ProductCreated(product=product_to_proto(product))
            return [(message, product.name)]
        case ProductUpdated(product=product, changed_fields=changed_fields):
            message = events_pb2.ProductUpdated(
                product=product_to_proto(product), changed_fields=product_paths(changed_fields)
            )
            return [(message, product.name)]
        case ProductDeleted():
            return [(events_pb2.ProductDeleted(product=event.name), event.name)]
    raise TypeError(f"catalog does not publish {type(event).__name__}")


#: Writes the catalog's events into its outbox table.
OUTBOX = OutboxWriter(orm.outbox, "catalog", to_messages)
