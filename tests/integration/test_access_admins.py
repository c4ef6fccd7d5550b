"""The last admin stays one when two admins demote or remove each other at the same moment.

Two stores on one database stand for two API nodes (or an API node and
``jobyard user``): each has its own connections. Every round makes two admins
and lets two threads, released together by a barrier, each demote or remove
the other; exactly one of them must be refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from itertools import product

import pytest

from jobyard.access import Role
from jobyard.access.accounts import Accounts
from jobyard.errors import Conflict
from jobyard.store import Store
from tests.stores import T0, in_threads

ROUNDS = 8  # of each pair of changes: enough to lose the race without the lock, often
Change = Callable[[Accounts, str], object]
CHANGES: dict[str, Change] = {
    "demote": lambda accounts, name: accounts.set_role(name, Role.VIEWER),
    "remove": lambda accounts, name: accounts.remove_user(name),
}


@pytest.fixture
def nodes(database_url: str) -> Iterator[list[Accounts]]:
    stores = [Store(database_url), Store(database_url)]
    yield [Accounts(store, lambda: T0) for store in stores]
    for store in stores:
        store.close()


def race(nodes: list[Accounts], changes: list[Change], names: list[str]) -> list[str]:
    """Node i applies ``changes[i]`` to ``names[1 - i]``, both at once: what became of each."""
    barrier = threading.Barrier(2)

    def change(i: int) -> str:
        barrier.wait(timeout=10)
        try:
            changes[i](nodes[i], names[1 - i])
        except Conflict:
            return "refused"
        return "done"

    return in_threads(2, change)


@pytest.mark.parametrize(("first", "second"), list(product(CHANGES, repeat=2)))
def test_two_admins_changing_each_other_at_once_leave_one_admin(
    database_url: str, nodes: list[Accounts], first: str, second: str
) -> None:
    changes = [CHANGES[first], CHANGES[second]]
    survivors: list[str] = []
    with closing(Store(database_url)) as store:
        for round_ in range(ROUNDS):
            names = [f"adm{round_}-a", f"adm{round_}-b"]
            for name in names:  # a made-up hash: Argon2 would cost 0.1 s each
                store.access.add_user(name, Role.ADMIN, "not-a-hash", T0)
            for name in survivors:  # of the last round: the two are the only admins now
                store.access.remove_user(name)
            outcomes = race(nodes, changes, names)
            survivors = [u.name for u in store.access.list_users() if u.role is Role.ADMIN]
            assert sorted(outcomes) == ["done", "refused"], (round_, outcomes)
            assert len(survivors) == 1, (round_, survivors)
