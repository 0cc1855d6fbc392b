"""Request checks and protobuf conversion for identity."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from agora.identity.v1 import identity_service_pb2 as pb
from identity.adapters.tokens import JwtTokenSigner
from identity.entrypoints import convert
from runtime.errors import InvalidArgument

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def sign_up(**fields: str) -> pb.SignUpRequest:
    values = {"email": " Ada@Example.com ", "password": "correct horse", "display_name": " Ada "}
    return pb.SignUpRequest(**{**values, **fields})


def test_sign_up_strips_email_and_display_name_but_keeps_the_case() -> None:
    command = convert.sign_up_command(sign_up())
    assert (command.email, command.display_name) == ("Ada@Example.com", "Ada")
    assert command.password == "correct horse"
    assert "correct horse" not in repr(command)
    assert command.idempotency is None


@pytest.mark.parametrize(
    ("fields", "reason", "violated"),
    [
        ({"email": "ada"}, "INVALID_EMAIL", ["email"]),
        ({"email": ""}, "INVALID_EMAIL", ["email"]),
        ({"password": "short"}, "INVALID_PASSWORD", ["password"]),
        ({"display_name": "  "}, "INVALID_ARGUMENT", ["display_name"]),
        ({"request_id": "r" * 65}, "INVALID_ARGUMENT", ["request_id"]),
        (
            {"email": "ada", "password": "", "display_name": ""},
            "INVALID_EMAIL",
            ["email", "password", "display_name"],
        ),
        ({"password": "", "display_name": ""}, "INVALID_PASSWORD", ["password", "display_name"]),
    ],
)
def test_sign_up_reports_every_bad_field_with_the_contracts_reason(
    fields: dict[str, str], reason: str, violated: list[str]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.sign_up_command(sign_up(**fields))
    assert caught.value.reason == reason
    assert [v.field for v in caught.value.violations] == violated


def test_the_sign_up_fingerprint_leaves_out_the_password_and_request_id() -> None:
    first = convert.sign_up_command(sign_up(request_id="r-1"))
    other_password = convert.sign_up_command(sign_up(request_id="r-2", password="other secret"))
    other_name = convert.sign_up_command(sign_up(request_id="r-1", display_name="Bob"))
    assert first.idempotency is not None
    assert other_password.idempotency is not None
    assert other_name.idempotency is not None
    assert first.idempotency.fingerprint == other_password.idempotency.fingerprint
    assert first.idempotency.fingerprint != other_name.idempotency.fingerprint


def test_login_and_refresh_need_their_fields() -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.login_command(pb.LoginRequest(email=" ", password=""))
    assert caught.value.reason == "INVALID_ARGUMENT"
    assert [v.field for v in caught.value.violations] == ["email", "password"]
    with pytest.raises(InvalidArgument):
        convert.refresh_tokens_command(pb.RefreshTokenRequest())
    assert convert.login_command(pb.LoginRequest(email=" a@b.io", password="x")).email == "a@b.io"


@pytest.mark.parametrize("name", ["", "users/", "user/uada", "users/UADA", "users/uada/x"])
def test_malformed_user_names_are_invalid(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.parse_user_name(name)
    assert [v.field for v in caught.value.violations] == ["name"]


def test_user_names_parse_to_ids() -> None:
    assert convert.parse_user_name("users/u1f2e") == "u1f2e"


def test_jwks_response_lists_keys_as_messages_and_as_a_jwk_set() -> None:
    signer = JwtTokenSigner()
    keys = [signer.new_key(NOON), signer.new_key(NOON)]
    response = convert.jwks_response(keys)
    assert [k.kid for k in response.keys] == [k.kid for k in keys]
    document = json.loads(response.jwks_json)
    assert [k["kid"] for k in document["keys"]] == [k.kid for k in keys]
    for message, jwk in zip(response.keys, document["keys"], strict=True):
        assert set(jwk) == {"kid", "kty", "crv", "x", "y", "alg", "use"}
        assert (message.kty, message.crv, message.x, message.y, message.alg, message.use) == (
            jwk["kty"],
            jwk["crv"],
            jwk["x"],
            jwk["y"],
            jwk["alg"],
            jwk["use"],
        )
