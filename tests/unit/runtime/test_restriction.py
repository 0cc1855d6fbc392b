"""The one user a caller's calls are restricted to, as orders, payments, notifications and
identity pass it to their use cases: it must agree with :meth:`runtime.auth.Caller.owns`,
the one rule of who acts for whom.
"""

from __future__ import annotations

import pytest

from runtime.access import LOCAL_OPERATOR, restriction
from runtime.auth import Caller
from runtime.errors import Unauthenticated

CALLERS = {
    "customer": (Caller.user("users/ada", ["customer"]), "ada"),
    "user without roles": (Caller.user("users/ada"), "ada"),
    "admin": (Caller.user("users/root", ["customer", "admin"]), None),
    "service": (Caller.service("orders"), None),
    "local operator": (LOCAL_OPERATOR, None),
    # Only the admin role lifts the restriction.
    "user with another role": (Caller.user("users/ada", ["support"]), "ada"),
}


@pytest.mark.parametrize("kind", list(CALLERS))
def test_users_are_restricted_to_themselves_admins_and_services_to_no_one(kind: str) -> None:
    caller, expected = CALLERS[kind]
    assert restriction(caller) == expected
    # The same answer as the runtime's rule: a restricted caller owns only its own user.
    assert caller.owns("users/someone-else") is (expected is None)
    if expected is not None:
        assert caller.owns(f"users/{expected}")


def test_without_a_caller_nothing_is_served() -> None:
    with pytest.raises(Unauthenticated) as caught:
        restriction(None)
    assert caught.value.reason == "ACCESS_TOKEN_MISSING"
