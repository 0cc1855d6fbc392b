"""The identity contract's ``buf.validate`` rules state what identity itself enforces.

Each bad request below breaks a rule of the contract; identity's own conversion must
reject it too, naming the same fields. ``SignUpRequest`` carries no rule at all: the
contract gives a malformed email address and password their own reasons
(``INVALID_EMAIL``, ``INVALID_PASSWORD``), also when other fields are wrong too, and a
rule's violation would answer ``INVALID_ARGUMENT`` before identity could tell.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from agora.identity.v1 import identity_service_pb2 as pb
from identity.entrypoints import convert
from tests.support.contract_rules import (
    ServiceCheck,
    assert_accepted_alike,
    assert_left_to_service,
    assert_rejected_alike,
    request_types,
    requests_with_rules,
)

SERVICE = pb.DESCRIPTOR.services_by_name["IdentityService"]

#: What identity runs on each request type before any use case.
SERVICE_CHECKS: dict[type[Message], ServiceCheck] = {
    pb.SignUpRequest: convert.sign_up_command,
    pb.LoginRequest: convert.login_command,
    pb.RefreshTokenRequest: convert.refresh_tokens_command,
    pb.GetUserRequest: lambda r: convert.parse_user_name(r.name),
    pb.GetJwksRequest: lambda r: None,
}

BAD_REQUESTS: list[tuple[str, Message, list[str]]] = [
    ("login without anything", pb.LoginRequest(), ["email", "password"]),
    ("login with a blank email", pb.LoginRequest(email=" \t ", password="pw"), ["email"]),
    ("refresh without a token", pb.RefreshTokenRequest(), ["refresh_token"]),
    ("user name missing", pb.GetUserRequest(), ["name"]),
    ("user name of an order", pb.GetUserRequest(name="orders/o1"), ["name"]),
    ("user id in capitals", pb.GetUserRequest(name="users/Ada"), ["name"]),
    ("user id too long", pb.GetUserRequest(name="users/u" + "1" * 63), ["name"]),
]


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [pytest.param(request, fields, id=case) for case, request, fields in BAD_REQUESTS],
)
def test_the_service_rejects_what_the_contract_rejects_naming_the_same_fields(
    request_message: Message, fields: list[str]
) -> None:
    assert_rejected_alike(request_message, fields, SERVICE_CHECKS[type(request_message)])


GOOD_REQUESTS: list[Message] = [
    pb.SignUpRequest(email="ada@example.com", password="correct horse", display_name="Ada"),
    # Login checks no password rule: the credentials decide.
    pb.LoginRequest(email=" ada@example.com ", password=" "),
    # An over-long refresh token is the use case's REFRESH_TOKEN_INVALID, not a rule's.
    pb.RefreshTokenRequest(refresh_token="t" * 600),
    pb.GetUserRequest(name="users/u0123456789abcdef0123456789abcdef"),
    pb.GetUserRequest(name="users/a" + "-" * 62),
    pb.GetJwksRequest(),
]


@pytest.mark.parametrize("request_message", GOOD_REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_the_service_accepts_break_no_rule(request_message: Message) -> None:
    assert_accepted_alike(request_message, SERVICE_CHECKS[type(request_message)])


LEFT_TO_THE_SERVICE: list[tuple[str, Message, list[str], str]] = [
    (
        "a malformed email address, and a blank display name",
        pb.SignUpRequest(email="ada", password="correct horse", display_name=" "),
        ["email", "display_name"],
        "INVALID_EMAIL",
    ),
    (
        "a short password, and an over-long request id",
        pb.SignUpRequest(
            email="ada@example.com", password="short", display_name="Ada", request_id="r" * 65
        ),
        ["password", "request_id"],
        "INVALID_PASSWORD",
    ),
    (
        "only a blank display name",
        pb.SignUpRequest(email="ada@example.com", password="correct horse"),
        ["display_name"],
        "INVALID_ARGUMENT",
    ),
]


@pytest.mark.parametrize(
    ("request_message", "fields", "reason"),
    [pytest.param(r, f, why, id=case) for case, r, f, why in LEFT_TO_THE_SERVICE],
)
def test_sign_up_is_checked_by_the_service_alone_for_its_own_reasons(
    request_message: Message, fields: list[str], reason: str
) -> None:
    assert_left_to_service(request_message, fields, reason, SERVICE_CHECKS[type(request_message)])


def test_every_identity_request_but_sign_up_and_get_jwks_carries_rules() -> None:
    assert request_types(SERVICE) == {t.DESCRIPTOR.full_name for t in SERVICE_CHECKS}
    assert requests_with_rules(SERVICE) == {
        "LoginRequest",
        "RefreshTokenRequest",
        "GetUserRequest",
    }
