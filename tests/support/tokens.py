"""Access tokens for tests, in identity's exact format, from a key a test service trusts.

tokens = Tokens()
service = Service(..., jwks=tokens.jwks)        # the service trusts this key
await stub.GetOrder(request, metadata=tokens.of("users/ada", "customer"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from identity.adapters.tokens import JwtTokenSigner
from identity.domain.model import AccessToken

Metadata = tuple[tuple[str, str], ...]


class Tokens:
    """Access tokens of any user, signed by a key the service under test trusts."""

    def __init__(self) -> None:
        self._signer = JwtTokenSigner()
        self._key = self._signer.new_key(datetime.now(UTC))

    async def jwks(self) -> Sequence[Mapping[str, str]]:
        """The key set to give the service (``Service.jwks``)."""
        return [self._key.public_jwk]

    def token(self, user: str, *roles: str, lifetime: timedelta = timedelta(minutes=5)) -> str:
        """A token of ``user`` (``users/{id}``) holding ``roles``, valid for ``lifetime``."""
        now = datetime.now(UTC)
        claims = AccessToken(user.removeprefix("users/"), roles, now, now + lifetime)
        return self._signer.sign(claims, self._key)

    def of(self, user: str, *roles: str) -> Metadata:
        """The metadata of a call by ``user`` holding ``roles``."""
        return (("authorization", f"Bearer {self.token(user, *roles)}"),)
