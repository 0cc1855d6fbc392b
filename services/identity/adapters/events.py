"""Identity's domain events as the contract's messages (``agora.identity.v1`` events.proto).

The unit of work writes them to the outbox at commit; the user is converted as the
servicer converts it (one ``User`` message, whoever reads it, never a password hash).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agora.identity.v1 import events_pb2
from identity.adapters import orm
from identity.domain.events import UserSignedUp
from identity.entrypoints.convert import user_to_proto
from runtime.outbox import OutboxWriter


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    """The messages an event publishes, each with the user's name as its aggregate."""
    if not isinstance(event, UserSignedUp):
        raise TypeError(f"identity does not publish {type(event).__name__}")
    return [(events_pb2.UserSignedUp(user=user_to_proto(event.user)), event.user.name)]


#: Writes identity's events into its outbox table.
OUTBOX = OutboxWriter(orm.outbox, "identity", to_messages)
