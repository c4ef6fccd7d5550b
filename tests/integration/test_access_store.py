"""The store's part of access control on every backend: what goes in comes back out.

Users, API tokens, browser sessions and audit entries round-trip with their
times to the microsecond and their time zone, and the verbs keep their promises
(a taken name, an owner's revocation, expired sessions, filters and pages).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jobyard.access import AuditEntry, AuditQuery, Role
from jobyard.store import Store
from jobyard.store.access import UserGone
from jobyard.store.migrate import alembic_config
from jobyard.store.tables import metadata
from tests.stores import T0

HOUR = timedelta(hours=1)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def add(store: Store, name: str, role: Role = Role.VIEWER) -> int:
    user = store.access.add_user(name, role, f"hash-of-{name}", T0)
    assert user is not None
    return user.id


def test_users_round_trip(store: Store) -> None:
    access = store.access
    made = access.add_user("ann@example.org", Role.OPERATOR, "$argon2id$hash", T0)
    assert made is not None
    assert (made.name, made.role, made.created_at, made.updated_at) == (
        "ann@example.org",
        Role.OPERATOR,
        T0,
        T0,
    )
    assert made.created_at.tzinfo is not None
    assert access.add_user("ann@example.org", Role.ADMIN, "other", T0) is None
    assert access.user("ann@example.org") == (made, "$argon2id$hash")
    assert access.user("ANN@example.org") is None  # names are case-sensitive
    assert access.user("ann@example.org ") is None  # and exact (MariaDB's pad spaces)
    assert access.user_by_id(made.id) == made
    assert access.user("nobody") is None
    add(store, "bob")
    assert [u.name for u in access.list_users()] == ["ann@example.org", "bob"]
    assert access.count_users() == 2


def test_a_user_changes_role_and_password(store: Store) -> None:
    access = store.access
    add(store, "ann")
    later = T0 + HOUR
    assert access.change_user("ann", later, role=Role.ADMIN, password_hash="new")
    user, stored = access.user("ann") or pytest.fail("gone")
    assert (user.role, stored, user.created_at, user.updated_at) == (Role.ADMIN, "new", T0, later)
    assert not access.change_user("nobody", later, role=Role.ADMIN)


def test_tokens_round_trip_and_are_revoked_by_their_owner_only(store: Store) -> None:
    access = store.access
    ann, bob = add(store, "ann"), add(store, "bob")
    forever = access.add_token(ann, "ann", "ci", Role.VIEWER, "a" * 64, T0, None)
    soon = access.add_token(ann, "ann", "deploy", Role.OPERATOR, "b" * 64, T0, T0 + HOUR)
    bobs = access.add_token(bob, "bob", "ci", Role.VIEWER, "c" * 64, T0, None)
    assert (soon.user, soon.name, soon.role, soon.created_at, soon.expires_at) == (
        "ann",
        "deploy",
        Role.OPERATOR,
        T0,
        T0 + HOUR,
    )
    assert (forever.expires_at, forever.revoked_at) == (None, None)
    assert access.token_by_digest("b" * 64) == (soon, Role.VIEWER)  # with its owner's role
    assert access.token_by_digest("d" * 64) is None
    assert [t.id for t in access.list_tokens(ann, "ann")] == [soon.id, forever.id]  # newest first
    assert [t.id for t in access.list_tokens(bob, "bob", everyone=True)] == [
        bobs.id,
        soon.id,
        forever.id,
    ]

    assert access.revoke_token(soon.id, T0 + HOUR, bob, "bob") is None  # not bob's
    assert access.token_by_digest("b" * 64) == (soon, Role.VIEWER)  # with its owner's role
    revoked = access.revoke_token(soon.id, T0 + HOUR, ann, "ann")
    assert revoked is not None
    assert revoked.revoked_at == T0 + HOUR
    again = access.revoke_token(
        soon.id, T0 + 2 * HOUR, bob, "bob", anyones=True
    )  # an admin, later: stays as it was
    assert again is not None
    assert again.revoked_at == T0 + HOUR
    assert access.revoke_token(999_999, T0, bob, "bob", anyones=True) is None


def test_sessions_expire_and_end(store: Store) -> None:
    access = store.access
    ann = add(store, "ann", Role.OPERATOR)
    access.add_session("s" * 64, ann, "csrf-1", T0, T0 + HOUR)
    found = access.session("s" * 64, T0 + HOUR - timedelta(microseconds=1))
    assert found is not None
    user, csrf = found
    assert (user.name, user.role, csrf) == ("ann", Role.OPERATOR, "csrf-1")
    assert access.session("s" * 64, T0 + HOUR) is None  # at its end: over
    assert access.session("t" * 64, T0) is None
    access.add_session("t" * 64, ann, "csrf-2", T0, T0 + HOUR)
    access.remove_session("t" * 64)
    assert access.session("t" * 64, T0) is None
    assert access.session("s" * 64, T0) is not None


def test_a_new_session_sweeps_out_the_expired_ones(store: Store) -> None:
    access = store.access
    ann = add(store, "ann")
    access.add_session("old" + "0" * 61, ann, "c", T0, T0 + HOUR)
    access.add_session("new" + "0" * 61, ann, "c", T0 + 2 * HOUR, T0 + 3 * HOUR)
    # Asked about a time before it expired, the swept session is still gone: it was deleted.
    assert access.session("old" + "0" * 61, T0) is None
    assert access.session("new" + "0" * 61, T0 + 2 * HOUR) is not None


def test_removing_sessions_by_user_leaves_the_others(store: Store) -> None:
    access = store.access
    ann, bob = add(store, "ann"), add(store, "bob")
    for i, owner in enumerate((ann, ann, bob)):
        access.add_session(f"{i}" * 64, owner, "c", T0, T0 + HOUR)
    assert access.remove_sessions("ann") == 2
    assert [access.session(f"{i}" * 64, T0) is None for i in range(3)] == [True, True, False]
    assert access.remove_sessions("nobody") == 0


def test_removing_a_user_takes_their_tokens_and_sessions(store: Store) -> None:
    access = store.access
    ann, bob = add(store, "ann"), add(store, "bob")
    access.add_token(ann, "ann", "ci", Role.VIEWER, "a" * 64, T0, None)
    kept = access.add_token(bob, "bob", "ci", Role.VIEWER, "b" * 64, T0, None)
    access.add_session("s" * 64, ann, "c", T0, T0 + HOUR)
    assert access.remove_user("ann")
    assert not access.remove_user("ann")
    assert access.user("ann") is None
    assert access.token_by_digest("a" * 64) is None
    assert access.session("s" * 64, T0) is None
    assert access.list_tokens(bob, "bob", everyone=True) == [kept]
    assert access.count_users() == 1


def test_audit_entries_round_trip_newest_first(store: Store) -> None:
    detail = {"method": "POST", "status": 201, "query": "force=true", "ünï": ["cödé", 1.5]}
    store.access.record(
        [
            AuditEntry(T0, "ann", "token", "submit", "/api/v1/jobs/1", "ok", "10.0.0.1", detail),
            AuditEntry(T0 + HOUR, "-", "password", "login", "user x", "failed", "::1", None),
        ]
    )
    store.access.record([])  # nothing to write is fine
    found, total = store.access.find_audit(AuditQuery())
    assert total == 2
    newest, oldest = found
    assert (newest.actor, newest.outcome, newest.detail, newest.at) == (
        "-",
        "failed",
        None,
        T0 + HOUR,
    )
    assert oldest.id is not None
    assert oldest == AuditEntry(
        T0, "ann", "token", "submit", "/api/v1/jobs/1", "ok", "10.0.0.1", detail, oldest.id
    )


def test_overlong_audit_fields_are_cut_to_their_columns(store: Store) -> None:
    long = AuditEntry(T0, "a" * 300, "password", "b" * 300, "c" * 600, "ok", "d" * 300)
    store.access.record([long])
    (stored,), _ = store.access.find_audit(AuditQuery())
    assert (len(stored.actor), len(stored.action), len(stored.target), len(stored.address)) == (
        100,
        64,
        255,
        64,
    )


def test_audit_filters_and_pages(store: Store) -> None:
    entries = [
        AuditEntry(T0 + timedelta(minutes=i), actor, "password", action, target, outcome)
        for i, (actor, action, target, outcome) in enumerate(
            [
                ("ann", "submit", "/api/v1/jobs/1", "ok"),
                ("bob", "submit", "/api/v1/jobs", "denied"),
                ("ann", "kill_job", "/api/v1/jobs/1/kill", "ok"),
                ("bob", "login", "user ÉmileZ", "failed"),
                ("root", "add_user", "/api/v1/users/Carol_100%", "ok"),
            ]
        )
    ]
    store.access.record(entries)

    def actions(**query: Any) -> tuple[list[str], int]:
        found, total = store.access.find_audit(AuditQuery(**query))
        return [e.action for e in found], total

    assert actions() == (["add_user", "login", "kill_job", "submit", "submit"], 5)
    assert actions(actors=["ann"]) == (["kill_job", "submit"], 2)
    assert actions(actors=["ann", "root"], outcomes=["ok"]) == (
        ["add_user", "kill_job", "submit"],
        3,
    )
    assert actions(actions=["submit"], outcomes=["denied"]) == (["submit"], 1)
    assert actions(since=T0 + timedelta(minutes=3)) == (["add_user", "login"], 2)
    assert actions(until=T0 + timedelta(minutes=1)) == (["submit"], 1)
    assert actions(search="CAROL_100%") == (["add_user"], 1)  # any case; % is no wildcard
    assert actions(search="_1") == (["add_user"], 1)  # nor _
    assert actions(search="jobs/1") == (["kill_job", "submit"], 2)
    for term in ("ÉmileZ", "émilez", "ÉMILEZ"):  # beyond ASCII too (SQLite's lower() is not)
        assert actions(search=term) == (["login"], 1), term
    assert actions(page=1, per_page=2) == (["add_user", "login"], 5)
    assert actions(page=3, per_page=2) == (["submit"], 5)
    assert actions(page=4, per_page=2) == ([], 5)


def test_a_revoke_reaches_the_tokens_made_with_the_token(store: Store) -> None:
    access = store.access
    ann = add(store, "ann", Role.OPERATOR)
    root = access.add_token(ann, "ann", "root", Role.OPERATOR, "a" * 64, T0, T0 + 2 * HOUR)
    assert root is not None
    child = access.add_token(ann, "ann", "child", Role.VIEWER, "b" * 64, T0, None, made_by=root.id)
    assert child is not None
    assert (child.made_by, child.expires_at) == (root.id, T0 + 2 * HOUR)  # capped to root's
    grandchild = access.add_token(ann, "ann", "gc", Role.VIEWER, "c" * 64, T0, T0 + HOUR, child.id)
    aside = access.add_token(ann, "ann", "aside", Role.VIEWER, "d" * 64, T0, None)
    assert grandchild is not None
    assert aside is not None
    assert grandchild.expires_at == T0 + HOUR  # its own, earlier end stays

    access.revoke_token(root.id, T0 + HOUR, ann, "ann")
    revoked = {t.name: t.revoked_at for t in access.list_tokens(ann, "ann")}
    assert revoked == {"root": T0 + HOUR, "child": T0 + HOUR, "gc": T0 + HOUR, "aside": None}


def test_no_token_is_made_with_a_revoked_or_expired_token(store: Store) -> None:
    access = store.access
    ann = add(store, "ann")
    revoked = access.add_token(ann, "ann", "revoked", Role.VIEWER, "a" * 64, T0, None)
    ending = access.add_token(ann, "ann", "ending", Role.VIEWER, "b" * 64, T0, T0 + HOUR)
    assert revoked is not None
    assert ending is not None
    access.revoke_token(revoked.id, T0, ann, "ann")
    assert access.add_token(ann, "ann", "x", Role.VIEWER, "c" * 64, T0, None, revoked.id) is None
    assert (
        access.add_token(ann, "ann", "x", Role.VIEWER, "c" * 64, T0 + HOUR, None, ending.id) is None
    )
    assert access.add_token(ann, "ann", "x", Role.VIEWER, "c" * 64, T0, None, 999_999) is None
    assert [t.name for t in access.list_tokens(ann, "ann")] == ["ending", "revoked"]


def test_a_removed_user_writes_and_reads_no_tokens_by_their_old_id(store: Store) -> None:
    access = store.access
    add(store, "ann")
    zed = add(store, "zed")
    assert access.remove_user("zed")
    bob = add(store, "bob")  # may have zed's id (SQLite gave it before revision 0020)
    bobs = access.add_token(bob, "bob", "ci", Role.VIEWER, "b" * 64, T0, None)
    assert bobs is not None
    with pytest.raises(UserGone):
        access.add_token(zed, "zed", "ci", Role.VIEWER, "z" * 64, T0, None)
    with pytest.raises(UserGone):
        access.list_tokens(zed, "zed")
    with pytest.raises(UserGone):
        access.revoke_token(bobs.id, T0, zed, "zed")
    assert access.list_tokens(bob, "bob") == [bobs]  # not revoked, and no new one


def test_a_removed_users_id_is_not_given_again(store: Store) -> None:
    access = store.access
    add(store, "ann")
    zed = add(store, "zed")
    token = access.add_token(zed, "zed", "ci", Role.VIEWER, "z" * 64, T0, None)
    assert token is not None
    assert access.remove_user("zed")
    again = add(store, "zed")
    bobs = access.add_token(again, "zed", "ci", Role.VIEWER, "b" * 64, T0, None)
    assert bobs is not None
    assert again > zed
    assert bobs.id > token.id


def test_users_tokens_and_sessions_stored_before_0020_stay_when_migrated(
    empty_database_url: str,
) -> None:
    """Revision 0020 rebuilds ``users`` and ``api_tokens`` on SQLite: every row stays,
    with its id, and a removed user's id is not given again from then on."""
    store = Store(empty_database_url)
    try:
        with store.engine.connect() as conn, conn.begin():
            command.upgrade(alembic_config(conn), "0019")
        access = store.access
        ann, zed = add(store, "ann", Role.ADMIN), add(store, "zed")
        token = access.add_token(zed, "zed", "ci", Role.VIEWER, "z" * 64, T0, None)
        assert token is not None
        access.add_session("s" * 64, zed, "csrf", T0, T0 + HOUR)
        before = (access.list_users(), access.token_by_digest("z" * 64))
        store.migrate()
        assert (access.list_users(), access.token_by_digest("z" * 64)) == before
        assert access.session("s" * 64, T0) is not None
        assert access.add_user("ann", Role.VIEWER, "other", T0) is None  # names stay unique
        assert access.remove_user("zed")
        assert add(store, "bob") > zed
        made = access.add_token(ann, "ann", "ci", Role.VIEWER, "a" * 64, T0, None)
        assert made is not None
        assert made.id > token.id
        with store.engine.connect() as conn:  # its indexes and constraints too
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.close()
