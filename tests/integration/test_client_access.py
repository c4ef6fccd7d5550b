"""The Python client's access methods against a real server: me, tokens, users, audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.client import (
    ApiError,
    AuditPage,
    Client,
    Conflict,
    Forbidden,
    Invalid,
    Me,
    NotFound,
    TokenInfo,
    Unauthorized,
    UserInfo,
)
from tests.harness import ADMIN, Server, shared_server

server = shared_server(backends=["sqlite"])
PASSWORD = "a-long-enough-password"


@pytest.fixture
def admin(server: Server) -> Iterator[Client]:
    with Client(server.url, auth=ADMIN) as client:
        yield client


@pytest.fixture
def viewer(admin: Client) -> Iterator[str]:
    """A new viewer's name (password :data:`PASSWORD`), removed afterwards."""
    name = f"viewer-{uuid.uuid4().hex[:8]}"
    admin.add_user(name, PASSWORD)
    yield name
    admin.remove_user(name)


def test_me_tells_who_and_how(admin: Client) -> None:
    assert admin.me() == Me(name="admin", role="admin", via="password")


def test_a_token_acts_with_its_role_until_revoked(server: Server, admin: Client) -> None:
    made = admin.create_token("ci", role="viewer", expires_in="1h")
    assert made.secret.startswith("jy_")
    assert (made.token.name, made.token.user, made.token.role) == ("ci", "admin", "viewer")
    assert made.token.expires_at is not None
    left = made.token.expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    with Client(server.url, token=made.secret) as scripted:
        assert scripted.me() == Me("admin", "viewer", "token", token_id=made.token.id)
        assert scripted.jobs().total >= 0  # a viewer reads
        with pytest.raises(Forbidden) as denied:
            scripted.submit("echo", {"text": "no"})
        assert denied.value.status == 403
        assert "operator" in denied.value.detail
        revoked = admin.revoke_token(made.token.id)
        assert revoked.revoked_at is not None
        assert not revoked.valid(datetime.now(UTC))
        with pytest.raises(Unauthorized) as refused:
            scripted.me()
        assert refused.value.status == 401


def test_tokens_lists_ones_own_and_everyone_for_admins(
    server: Server, admin: Client, viewer: str
) -> None:
    forever = admin.create_token("forever", expires_in=None)
    assert forever.token.expires_at is None
    assert forever.token.valid(datetime.now(UTC) + timedelta(days=3650))
    with Client(server.url, auth=(viewer, PASSWORD)) as own:
        mine = own.create_token("mine")
        listed = own.tokens()
        assert [t.id for t in listed] == [mine.token.id]
        assert all(isinstance(t, TokenInfo) for t in listed)
        with pytest.raises(Forbidden):
            own.tokens(all=True)
        with pytest.raises(NotFound):
            own.revoke_token(forever.token.id)  # not theirs
        with pytest.raises(Forbidden):
            own.create_token("higher", role="admin")
    everyone = {t.id for t in admin.tokens(all=True)}
    assert {forever.token.id, mine.token.id} <= everyone
    assert mine.token.id not in {t.id for t in admin.tokens()}
    admin.revoke_token(forever.token.id)


def test_users_are_added_changed_and_removed(server: Server, admin: Client) -> None:
    name = f"op-{uuid.uuid4().hex[:8]}"
    added = admin.add_user(name, PASSWORD, role="operator")
    assert isinstance(added, UserInfo)
    assert (added.name, added.role) == (name, "operator")
    assert name in {user.name for user in admin.users()}
    with pytest.raises(Conflict):
        admin.add_user(name, PASSWORD)
    with pytest.raises(Invalid) as short:
        admin.add_user(f"{name}-2", "short")
    assert "password" in short.value.message
    changed = admin.change_user(name, role="viewer", password=f"{PASSWORD}-2")
    assert changed.role == "viewer"
    with Client(server.url, auth=(name, f"{PASSWORD}-2")) as user:
        assert user.me().role == "viewer"
        with pytest.raises(Forbidden):
            user.users()
    admin.remove_user(name)
    with pytest.raises(NotFound):
        admin.remove_user(name)
    with Client(server.url, auth=(name, f"{PASSWORD}-2")) as gone, pytest.raises(Unauthorized):
        gone.me()


def test_wrong_credentials_are_unauthorized(server: Server) -> None:
    with Client(server.url, auth=("admin", "not-the-password")) as client:
        with pytest.raises(Unauthorized) as wrong:
            client.jobs()
        assert isinstance(wrong.value, ApiError)
        assert wrong.value.detail == "wrong user name or password"
    with Client(server.url, token="jy_unknown") as client, pytest.raises(Unauthorized):
        client.jobs()


@pytest.mark.usefixtures("viewer")
def test_audit_finds_what_was_done(admin: Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    made = admin.create_token("audited")
    admin.revoke_token(made.token.id)
    page = admin.audit(actor="admin", action=["create_token", "revoke_token"], since=before)
    assert isinstance(page, AuditPage)
    # Other tests of the module may have made tokens within that second too.
    mine = [entry for entry in page.items if entry.target == f"/api/v1/tokens/{made.token.id}"]
    assert [entry.action for entry in mine] == ["revoke_token", "create_token"]
    revoked = mine[0]
    assert (revoked.actor, revoked.via, revoked.outcome) == ("admin", "password", "ok")
    assert revoked.target == f"/api/v1/tokens/{made.token.id}"
    assert revoked.at is not None
    assert revoked.at >= before
    assert revoked.detail == {"method": "DELETE", "status": 200}
    added = admin.audit(action="add_user", search="/api/v1/users")
    assert added.total >= 1  # the fixture's viewer at least
    assert admin.audit(action="create_token", until=before, since=before).total == 0
    one = admin.audit(per_page=1, page=2)
    assert (one.page, one.per_page, len(one.items)) == (2, 1, 1)
    assert one.pages == one.total
