"""Payments' domain events as the contract's messages (``agora.payments.v1`` events.proto).

The unit of work writes them to the outbox at commit; the conversion of the payment
itself is the servicer's (one ``Payment`` message, whoever reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agora.payments.v1 import events_pb2
from payments.adapters import orm
from payments.domain.model import PaymentEvent, PaymentEventType
from payments.entrypoints.convert import money_to_proto, payment_to_proto
from runtime.outbox import OutboxWriter


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    """The messages an event publishes, each with the payment's name as its aggregate."""
    if not isinstance(event, PaymentEvent):
        raise TypeError(f"payments does not publish {type(event).__name__}")
    payment = payment_to_proto(event.payment)
    message: Message
    if event.type is PaymentEventType.AUTHORIZED:
        message = events_pb2.PaymentAuthorized(payment=payment)
    elif event.type is PaymentEventType.CAPTURED:
        message = events_pb2.PaymentCaptured(payment=payment)
    elif event.type is PaymentEventType.VOIDED:
        message = events_pb2.PaymentVoided(payment=payment)
    elif event.type is PaymentEventType.DECLINED:
        message = events_pb2.PaymentDeclined(payment=payment)
    else:
        # Only a refund publishes this, and it always has its amount.
        assert event.refund is not None
        message = events_pb2.PaymentRefunded(payment=payment, amount=money_to_proto(event.refund))
    return [(message, event.payment.name)]


#: Writes payments' events into its outbox table.
OUTBOX = OutboxWriter(orm.outbox, "payments", to_messages)
