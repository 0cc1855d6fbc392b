"""The contract's ``buf.validate`` rules turned into ``BadRequest`` field violations."""

from __future__ import annotations

from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf import empty_pb2, struct_pb2

from agora.inventory.v1 import inventory_service_pb2
from runtime import validation
from runtime.errors import FieldViolation, InvalidArgument
from runtime.policy import services_named
from tests.support.validated_contract import ValidatedContract, validated_contract


@pytest.fixture(scope="module")
def shop() -> ValidatedContract:
    return validated_contract("Shop")


def valid_order(shop: ValidatedContract, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "customer": "ada",
        "line_items": [shop.line(sku="assam", quantity=2)],
        **changes,
    }
    return shop.request(**fields)


def test_a_valid_request_breaks_no_rule(shop: ValidatedContract) -> None:
    assert validation.violations(valid_order(shop)) == []
    validation.check(valid_order(shop, gift=True, gift_note="for Grace"))


def test_a_missing_required_field_is_required(shop: ValidatedContract) -> None:
    # protovalidate says "value is required"; services say "is required".
    assert validation.violations(valid_order(shop, customer="")) == [
        FieldViolation("customer", "is required")
    ]


def test_a_field_of_a_nested_message_is_named_by_its_path(shop: ValidatedContract) -> None:
    order = valid_order(shop, main_line=shop.line(sku="assam", quantity=0))
    assert validation.violations(order) == [
        FieldViolation("main_line.quantity", "must be greater than 0")
    ]


def test_an_element_of_a_repeated_field_is_named_with_its_index(shop: ValidatedContract) -> None:
    lines = [shop.line(sku="assam", quantity=1), shop.line(sku="", quantity=-3)]
    assert validation.violations(valid_order(shop, line_items=lines)) == [
        FieldViolation("line_items[1].sku", "must be at least 1 characters"),
        FieldViolation("line_items[1].quantity", "must be greater than 0"),
    ]


def test_a_map_value_is_named_with_its_quoted_key(shop: ValidatedContract) -> None:
    order = valid_order(shop)
    order.lines_by_label['gift "box"'].CopyFrom(shop.line(sku="assam", quantity=0))
    assert validation.violations(order) == [
        FieldViolation('lines_by_label["gift \\"box\\""].quantity', "must be greater than 0")
    ]


def test_a_message_level_rule_is_reported_on_the_request_with_its_message(
    shop: ValidatedContract,
) -> None:
    assert validation.violations(valid_order(shop, gift_note="for Grace")) == [
        FieldViolation("", "a gift note needs `gift` set")
    ]


def test_check_raises_one_invalid_argument_with_every_violation(shop: ValidatedContract) -> None:
    order = shop.request(customer="", gift_note="for Grace")
    with pytest.raises(InvalidArgument) as raised:
        validation.check(order)
    assert raised.value.reason == "INVALID_ARGUMENT"
    assert [v.field for v in raised.value.violations] == ["", "customer", "line_items"]
    assert raised.value.message == "invalid request: check the request, customer, line_items"


def test_map_keys_of_every_kind_and_indexes_are_written_as_in_the_request() -> None:
    path = validate_pb2.FieldPath(
        elements=[
            validate_pb2.FieldPathElement(field_name="by_id", int_key=-7),
            validate_pb2.FieldPathElement(field_name="by_flag", bool_key=True),
            validate_pb2.FieldPathElement(field_name="by_count", uint_key=7),
            validate_pb2.FieldPathElement(field_name="lines", index=0),
            validate_pb2.FieldPathElement(field_name="sku"),
        ]
    )
    assert validation.field_path(path) == "by_id[-7].by_flag[true].by_count[7].lines[0].sku"


def test_a_rule_without_a_message_is_described_by_its_id() -> None:
    violation = validate_pb2.Violation(
        field=validate_pb2.FieldPath(elements=[validate_pb2.FieldPathElement(field_name="sku")]),
        rule_id="sku.known",
    )
    assert validation.field_violation(violation) == FieldViolation(
        "sku", "breaks the rule 'sku.known'"
    )


def test_a_type_that_reaches_rules_through_a_field_has_rules(shop: ValidatedContract) -> None:
    assert validation.has_rules(shop.request_type)
    assert validation.has_rules(shop.line_type)


def test_types_without_rules_are_never_handed_to_the_validator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refusing:
        def collect_violations(self, message: object) -> list[object]:
            raise AssertionError(f"validated {type(message).__name__}")

    monkeypatch.setattr(validation, "_validator", Refusing())
    # Struct reaches itself (Struct -> Value -> ListValue -> Value): the walk must end.
    struct = struct_pb2.Struct()
    struct.update({"a": [1, {"b": None}]})
    for message in (empty_pb2.Empty(), struct):
        assert not validation.has_rules(message.DESCRIPTOR)
        assert validation.violations(message) == []


def test_rules_that_compile_pass_the_start_up_check(shop: ValidatedContract) -> None:
    validation.compile_rules(services_named([shop.service]))


def test_rules_that_do_not_compile_fail_the_start_up_check_naming_the_request() -> None:
    broken = validated_contract("Broken", rule="this.gift_note +")
    with pytest.raises(validation.ValidationRulesError, match=broken.request_type.full_name):
        validation.compile_rules(services_named([broken.service]))


def test_a_value_no_rule_can_evaluate_is_the_callers_mistake_not_an_internal_error() -> None:
    # A duration beyond CEL's range makes ReserveStock's ttl rule fail to evaluate.
    request = inventory_service_pb2.ReserveStockRequest(order="orders/o1", request_id="r")
    request.ttl.seconds = 10**12
    with pytest.raises(InvalidArgument) as refused:
        validation.check(request)
    assert [v.field for v in refused.value.violations] == [""]
    assert "cannot be checked" in refused.value.violations[0].description
