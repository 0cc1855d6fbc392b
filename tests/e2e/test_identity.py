"""Identity as a real process: sign up, log in, read yourself, rotate keys, catch token reuse.

One ``python -m identity`` process serves the module, with its own data directory; key
rotation runs as the operator would, as ``python -m identity rotate-keys`` against the
same database while the server keeps serving.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import jwt
import pytest

from agora.identity.v1 import identity_service_pb2 as pb
from agora.identity.v1 import identity_service_pb2_grpc
from tests.support.processes import REPO, ServiceProcess, clean_environment, running_service
from tests.support.status import error_info

if TYPE_CHECKING:
    from agora.identity.v1.identity_service_pb2_grpc import IdentityServiceAsyncStub

PASSWORD = "correct horse battery"
#: Bound on the operator command.
COMMAND_TIMEOUT_S = 60
#: Cheap argon2id parameters keep the process light; the algorithm and format are the same.
CHEAP_ARGON2 = {
    "IDENTITY_ARGON2_TIME_COST": "1",
    "IDENTITY_ARGON2_MEMORY_KIB": "8192",
    "IDENTITY_ARGON2_PARALLELISM": "1",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity")


@pytest.fixture(scope="module")
def identity_process(data_dir: Path) -> Iterator[ServiceProcess]:
    with running_service("identity", data_dir, env=CHEAP_ARGON2) as service:
        yield service


@pytest.fixture
async def identity(identity_process: ServiceProcess) -> AsyncIterator[IdentityServiceAsyncStub]:
    async with grpc.aio.insecure_channel(identity_process.address) as channel:
        yield identity_service_pb2_grpc.IdentityServiceStub(channel)


def unique_email() -> str:
    return f"ada-{uuid.uuid4().hex[:10]}@example.com"


def rotate_keys(data_dir: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "identity", "rotate-keys"],
        cwd=REPO,
        env=clean_environment({"AGORA_DATA_DIR": str(data_dir)}),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


async def test_a_user_signs_up_logs_in_and_survives_a_key_rotation(
    identity: IdentityServiceAsyncStub, data_dir: Path
) -> None:
    email = unique_email()
    user = (
        await identity.SignUp(pb.SignUpRequest(email=email, password=PASSWORD, display_name="Ada"))
    ).user
    tokens = await identity.Login(pb.LoginRequest(email=email, password=PASSWORD))
    metadata = [("authorization", f"Bearer {tokens.access_token}")]
    got = await identity.GetUser(pb.GetUserRequest(name=user.name), metadata=metadata)
    assert got.user == user

    before = await identity.GetJwks(pb.GetJwksRequest())
    assert "new signing key" in rotate_keys(data_dir)
    after = await identity.GetJwks(pb.GetJwksRequest())
    assert len(after.keys) == len(before.keys) + 1
    assert after.keys[1].kid == before.keys[0].kid

    # The token signed before the rotation verifies against the published set ...
    kid = jwt.get_unverified_header(tokens.access_token)["kid"]
    key = jwt.PyJWKSet.from_json(after.jwks_json)[kid]
    claims = jwt.decode(tokens.access_token, key, algorithms=["ES256"], issuer="identity.agora")
    assert claims["sub"] == user.name
    # ... and refreshed tokens are signed with the new key.
    refreshed = await identity.RefreshToken(
        pb.RefreshTokenRequest(refresh_token=tokens.refresh_token)
    )
    assert jwt.get_unverified_header(refreshed.access_token)["kid"] == after.keys[0].kid


async def test_a_replayed_refresh_token_ends_the_login(identity: IdentityServiceAsyncStub) -> None:
    email = unique_email()
    await identity.SignUp(pb.SignUpRequest(email=email, password=PASSWORD, display_name="Ada"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.Login(pb.LoginRequest(email=email, password="not the password"))
    assert error_info(caught.value).reason == "INVALID_CREDENTIALS"

    tokens = await identity.Login(pb.LoginRequest(email=email, password=PASSWORD))
    rotated = await identity.RefreshToken(
        pb.RefreshTokenRequest(refresh_token=tokens.refresh_token)
    )
    for token, reason in [
        (tokens.refresh_token, "REFRESH_TOKEN_REUSED"),
        (rotated.refresh_token, "REFRESH_TOKEN_REVOKED"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=token))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(caught.value).reason == reason
