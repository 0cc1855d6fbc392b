"""A made-up contract whose request carries ``buf.validate`` rules, added to the default pool.

Tests of :mod:`runtime.validation` need rules of every kind (nested, repeated, map, a
message-level CEL rule) without a generated module, so this builds the descriptor here,
as :mod:`tests.support.policy_contract` does::

    shop = validated_contract("Shop")
    request = shop.request(customer="ada", line_items=[shop.line(sku="tea", quantity=1)])

The request type is ``PlaceOrderRequest``::

    message Line {
      string sku = 1 [(buf.validate.field).string.min_len = 1];
      int32 quantity = 2 [(buf.validate.field).int32.gt = 0];
    }
    message PlaceOrderRequest {
      option (buf.validate.message).cel = {
        id: "gift_note_needs_gift"  message: "a gift note needs `gift` set"
        expression: "this.gift_note == '' || this.gift"
      };
      string customer = 1 [(buf.validate.field).required = true];
      repeated Line line_items = 2 [(buf.validate.field).repeated.min_items = 1];
      map<string, Line> lines_by_label = 3;
      Line main_line = 4;
      bool gift = 5;
      string gift_note = 6;
    }

Each call adds a new file with a package of its own (``agora.testing.v1.shop3``), so
names never clash across tests. ``rule`` replaces the CEL
expression of the message-level rule, to make a contract whose rules do not compile.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from buf.validate import validate_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, empty_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from agora.api.v1 import policy_pb2
from tests.support.policy_contract import PACKAGE, policy

_files = itertools.count()
#: The files the contract depends on must be in the pool first.
_DEPENDENCIES = (empty_pb2, policy_pb2, validate_pb2)

FIELD = descriptor_pb2.FieldDescriptorProto
GIFT_RULE = "this.gift_note == '' || this.gift"


@dataclass(frozen=True)
class ValidatedContract:
    """The made-up service and the classes of its messages."""

    #: Full name of the service, such as ``agora.testing.v1.shop3.Shop3Service``.
    service: str
    request_type: descriptor.Descriptor
    line_type: descriptor.Descriptor

    @property
    def method(self) -> str:
        """The gRPC path of its one method, ``PlaceOrder``."""
        return f"/{self.service}/PlaceOrder"

    def request(self, **fields: Any) -> Message:
        """A ``PlaceOrderRequest`` with ``fields`` set."""
        return GetMessageClass(self.request_type)(**fields)

    def line(self, **fields: Any) -> Message:
        """A ``Line`` with ``fields`` set."""
        return GetMessageClass(self.line_type)(**fields)


def validated_contract(name: str, *, rule: str = GIFT_RULE) -> ValidatedContract:
    """Adds ``<name><n>Service`` with one method ``PlaceOrder(PlaceOrderRequest) -> Empty``."""
    number = next(_files)
    # A package of its own per file, so that its message names never clash with another's.
    package = f"{PACKAGE}.{name.lower()}{number}"
    file = descriptor_pb2.FileDescriptorProto(
        name=f"agora/testing/v1/{name.lower()}_validated_{number}.proto",
        package=package,
        syntax="proto3",
        dependency=[
            "agora/api/v1/policy.proto",
            "buf/validate/validate.proto",
            "google/protobuf/empty.proto",
        ],
    )
    line = file.message_type.add(name="Line")
    sku = line.field.add(name="sku", number=1, type=FIELD.TYPE_STRING, label=FIELD.LABEL_OPTIONAL)
    sku.options.Extensions[validate_pb2.field].string.min_len = 1
    quantity = line.field.add(
        name="quantity", number=2, type=FIELD.TYPE_INT32, label=FIELD.LABEL_OPTIONAL
    )
    quantity.options.Extensions[validate_pb2.field].int32.gt = 0

    request = file.message_type.add(name="PlaceOrderRequest")
    request.options.Extensions[validate_pb2.message].cel.add(
        id="gift_note_needs_gift", message="a gift note needs `gift` set", expression=rule
    )
    customer = request.field.add(
        name="customer", number=1, type=FIELD.TYPE_STRING, label=FIELD.LABEL_OPTIONAL
    )
    customer.options.Extensions[validate_pb2.field].required = True
    items = request.field.add(
        name="line_items",
        number=2,
        type=FIELD.TYPE_MESSAGE,
        type_name=f".{package}.Line",
        label=FIELD.LABEL_REPEATED,
    )
    items.options.Extensions[validate_pb2.field].repeated.min_items = 1
    entry = request.nested_type.add(name="LinesByLabelEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=FIELD.TYPE_STRING, label=FIELD.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=FIELD.TYPE_MESSAGE,
        type_name=f".{package}.Line",
        label=FIELD.LABEL_OPTIONAL,
    )
    request.field.add(
        name="lines_by_label",
        number=3,
        type=FIELD.TYPE_MESSAGE,
        type_name=f".{package}.PlaceOrderRequest.LinesByLabelEntry",
        label=FIELD.LABEL_REPEATED,
    )
    request.field.add(
        name="main_line",
        number=4,
        type=FIELD.TYPE_MESSAGE,
        type_name=f".{package}.Line",
        label=FIELD.LABEL_OPTIONAL,
    )
    request.field.add(name="gift", number=5, type=FIELD.TYPE_BOOL, label=FIELD.LABEL_OPTIONAL)
    request.field.add(
        name="gift_note", number=6, type=FIELD.TYPE_STRING, label=FIELD.LABEL_OPTIONAL
    )

    service = file.service.add(name=f"{name}{number}Service")
    method = service.method.add(
        name="PlaceOrder",
        input_type=f".{package}.PlaceOrderRequest",
        output_type=".google.protobuf.Empty",
    )
    method.options.Extensions[policy_pb2.policy].CopyFrom(policy(policy_pb2.ACCESS_PUBLIC))

    pool = descriptor_pool.Default()
    pool.AddSerializedFile(file.SerializeToString())
    return ValidatedContract(
        service=f"{package}.{service.name}",
        request_type=pool.FindMessageTypeByName(f"{package}.PlaceOrderRequest"),
        line_type=pool.FindMessageTypeByName(f"{package}.Line"),
    )
