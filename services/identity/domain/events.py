"""What identity tells other services, as plain domain events.

A use case emits them on its unit of work in the transaction that makes the change, so
they are published if and only if that change commits (see :mod:`runtime.outbox`).
"""

from __future__ import annotations

from dataclasses import dataclass

from identity.domain.model import User


@dataclass(frozen=True)
class UserSignedUp:
    """A new user signed up; a replayed sign-up is not a new one."""

    user: User
