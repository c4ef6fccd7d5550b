"""A request let in as a user who is removed before it writes acts as nobody.

The password check is slow on purpose: a user can be removed between it and the
request's write, and on SQLite (before revision 0020) a new user could get the
removed one's id meanwhile. The token verbs then refuse with 401 on every backend,
and the new user's tokens stay as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from jobyard.access import Principal, Role
from jobyard.access.accounts import Accounts
from jobyard.access.audit import Audit
from jobyard.access.gate import Gate
from jobyard.errors import Unauthorized
from jobyard.store import Store

PASSWORD = "a-long-enough-password"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def let_in_then_removed(store: Store) -> tuple[Accounts, Principal, Principal]:
    """zed, let in by their password, then removed and followed by bob (with a token)."""
    accounts = Accounts(store, now)
    gate = Gate(store, Audit(store, now), now)
    accounts.add_user("admin", Role.ADMIN, PASSWORD)
    accounts.add_user("zed", Role.OPERATOR, PASSWORD)
    zed = gate.password("zed", PASSWORD, "10.0.0.1")
    accounts.remove_user("zed")
    accounts.add_user("bob", Role.ADMIN, PASSWORD)
    bob = gate.password("bob", PASSWORD, "10.0.0.1")
    return accounts, zed, bob


def test_a_removed_user_makes_no_token(store: Store) -> None:
    accounts, zed, bob = let_in_then_removed(store)
    with pytest.raises(Unauthorized, match="'zed' was removed"):
        accounts.add_token(zed, "zed's", None, None)
    assert accounts.tokens(bob, everyone=True) == []


def test_a_removed_user_lists_and_revokes_no_token(store: Store) -> None:
    accounts, zed, bob = let_in_then_removed(store)
    bobs = accounts.add_token(bob, "bob's", None, None).token
    with pytest.raises(Unauthorized, match="'zed' was removed"):
        accounts.tokens(zed)
    with pytest.raises(Unauthorized, match="'zed' was removed"):
        accounts.revoke_token(zed, bobs.id)
    assert accounts.tokens(bob) == [bobs]  # still valid
