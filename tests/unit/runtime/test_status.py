"""Errors survive the trip to ``google.rpc.Status`` and back, details and category included."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from runtime import errors
from runtime.status import (
    MAX_METADATA_CHARS,
    MAX_VIOLATIONS,
    from_rpc_error,
    from_status_details,
    to_grpc_status,
    to_rpc_status,
)

DOMAIN = "catalog.agora"


class ProductNotFound(errors.NotFound):
    reason = "PRODUCT_NOT_FOUND"


class CatalogBusy(errors.Unavailable):
    reason = "CATALOG_BUSY"


def _round_trip(error: errors.AgoraError) -> errors.AgoraError:
    status = to_rpc_status(error, DOMAIN)
    category = errors.CATEGORY_BY_CODE[grpc.StatusCode(error.code)]
    return from_status_details(category, status.message, status)


def _aio_error(status: grpc.Status) -> grpc.aio.AioRpcError:
    """A failed call as a ``grpc.aio`` channel raises it."""
    return grpc.aio.AioRpcError(
        code=status.code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
        debug_error_string=None,
    )


def test_an_error_becomes_a_status_with_its_code_message_and_error_info() -> None:
    error = ProductNotFound("product 'products/tea' does not exist", metadata={"product": "tea"})

    status = to_rpc_status(error, DOMAIN)

    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert status.message == "product 'products/tea' does not exist"
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "PRODUCT_NOT_FOUND",
        DOMAIN,
        {"product": "tea"},
    )


def test_an_error_with_its_own_domain_keeps_it() -> None:
    error = errors.FailedPrecondition("stock is short", domain="inventory.agora")

    info = error_details_pb2.ErrorInfo()
    assert to_rpc_status(error, DOMAIN).details[0].Unpack(info)

    assert info.domain == "inventory.agora"


def test_a_not_found_round_trips() -> None:
    back = _round_trip(ProductNotFound("gone", metadata={"product": "products/tea"}))

    assert type(back) is errors.NotFound
    assert (back.message, back.reason, back.domain, back.metadata) == (
        "gone",
        "PRODUCT_NOT_FOUND",
        DOMAIN,
        {"product": "products/tea"},
    )
    assert back.retry_after is None


def test_an_invalid_argument_round_trips_with_every_field_violation() -> None:
    violations = [
        errors.FieldViolation("product.display_name", "must not be empty"),
        errors.FieldViolation("product.price.units", "must be >= 0"),
    ]
    error = errors.InvalidArgument.for_fields(violations)

    back = _round_trip(error)

    assert isinstance(back, errors.InvalidArgument)
    assert back.violations == violations
    assert back.reason == "INVALID_ARGUMENT"
    assert back.message == "invalid request: check product.display_name, product.price.units"


def test_an_invalid_argument_without_violations_has_no_bad_request() -> None:
    status = to_rpc_status(errors.InvalidArgument("no"), DOMAIN)

    assert not any(d.Unpack(error_details_pb2.BadRequest()) for d in status.details)


def test_retry_info_round_trips() -> None:
    back = _round_trip(CatalogBusy("try later", retry_after=1.5, metadata={"queue": "full"}))

    assert isinstance(back, errors.Unavailable)
    assert back.retry_after == 1.5
    assert (back.reason, back.metadata) == ("CATALOG_BUSY", {"queue": "full"})


def test_an_error_without_retry_after_carries_no_retry_info() -> None:
    status = to_rpc_status(CatalogBusy("try later"), DOMAIN)

    assert not any(d.Unpack(error_details_pb2.RetryInfo()) for d in status.details)


def test_a_status_without_details_gives_the_category_defaults() -> None:
    back = from_status_details(errors.Aborted, "conflict", None)

    assert type(back) is errors.Aborted
    assert (back.message, back.reason, back.domain, back.metadata) == (
        "conflict",
        "ABORTED",
        None,
        {},
    )


def test_the_grpc_status_carries_the_rich_status_in_its_trailers() -> None:
    error = ProductNotFound("gone", metadata={"product": "products/tea"})

    status = to_grpc_status(error, DOMAIN)

    assert status.code == grpc.StatusCode.NOT_FOUND
    assert status.details == "gone"
    packed = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert isinstance(packed, bytes)
    assert status_pb2.Status.FromString(packed) == to_rpc_status(error, DOMAIN)


def test_a_failed_aio_call_becomes_the_matching_error_with_its_details() -> None:
    """What the client factory does with every failed call."""
    sent = errors.InvalidArgument.for_fields([errors.FieldViolation("name", "is required")])
    call_error = _aio_error(to_grpc_status(sent, DOMAIN))
    # grpc_status's stubs say grpc.Call; an aio failure is not one, yet carries the same methods.
    assert rpc_status.from_call(call_error) == to_rpc_status(sent, DOMAIN)  # type: ignore[arg-type]

    back = from_rpc_error(call_error)

    assert isinstance(back, errors.InvalidArgument)
    assert (back.message, back.reason, back.domain) == (sent.message, "INVALID_ARGUMENT", DOMAIN)
    assert back.violations == sent.violations


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
        (grpc.StatusCode.OUT_OF_RANGE, errors.InvalidArgument),
        (grpc.StatusCode.CANCELLED, errors.Unavailable),
        (grpc.StatusCode.UNIMPLEMENTED, errors.Unknown),
        (grpc.StatusCode.DATA_LOSS, errors.Internal),
    ],
)
def test_a_failed_aio_call_without_details_maps_to_its_category(
    code: grpc.StatusCode, category: type[errors.AgoraError]
) -> None:
    call_error = grpc.aio.AioRpcError(
        code=code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(),
        details="peer said no",
        debug_error_string=None,
    )

    back = from_rpc_error(call_error)

    assert type(back) is category
    assert back.message == "peer said no"
    assert back.reason == category.reason


def test_an_rpc_error_that_is_not_a_call_is_unknown() -> None:
    back = from_rpc_error(grpc.RpcError("no call attached"))

    assert type(back) is errors.Unknown


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (grpc.StatusCode.OUT_OF_RANGE, errors.InvalidArgument),
        (grpc.StatusCode.CANCELLED, errors.Unavailable),
        (grpc.StatusCode.UNIMPLEMENTED, errors.Unknown),
        (grpc.StatusCode.DATA_LOSS, errors.Internal),
    ],
)
def test_codes_without_a_class_of_their_own_share_the_closest_category(
    code: grpc.StatusCode, category: type[errors.AgoraError]
) -> None:
    assert errors.CATEGORY_BY_CODE[code] is category


def test_every_failure_code_has_a_category() -> None:
    failures = set(grpc.StatusCode) - {grpc.StatusCode.OK}

    assert set(errors.CATEGORY_BY_CODE) == failures


@pytest.mark.parametrize("category", sorted(set(errors.CATEGORY_BY_CODE.values()), key=str))
def test_each_category_maps_back_to_itself(category: type[errors.AgoraError]) -> None:
    assert errors.CATEGORY_BY_CODE[category.code] is category


def test_a_status_with_many_long_violations_stays_within_a_default_clients_limits() -> None:
    error = errors.InvalidArgument(
        "invalid request: " + "x" * 5000,
        violations=[
            errors.FieldViolation(f"line_items[{i}].product" + "y" * 300, "z" * 500)
            for i in range(50)
        ],
    )
    status = to_rpc_status(error, "orders.agora")
    bad = error_details_pb2.BadRequest()
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    status.details[1].Unpack(bad)
    assert len(bad.field_violations) == MAX_VIOLATIONS
    assert info.metadata["omitted_violations"] == str(50 - MAX_VIOLATIONS)
    assert bad.field_violations[0].field.startswith("line_items[0].product")
    # Base64 in the trailer grows it by a third; a default client accepts 8 KiB in all.
    assert len(status.SerializeToString()) * 4 / 3 + len(status.message) * 3 < 6 * 1024


def test_long_metadata_is_kept_up_to_its_own_bound() -> None:
    missing = ",".join(f"products/missing-{index}" for index in range(99))  # about 2,000
    error = errors.FailedPrecondition("missing", metadata={"products": missing, "x": "y" * 9000})
    info = error_details_pb2.ErrorInfo()
    to_rpc_status(error, "orders.agora").details[0].Unpack(info)
    assert info.metadata["products"] == missing
    assert len(info.metadata["x"]) == MAX_METADATA_CHARS
