"""Accounts and the gate over a real SQLite store, with a clock the test moves.

The rules that keep a server manageable (the last admin stays), the limits of
tokens, and what the gate accepts as time passes and accounts change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.access import Principal, Role, credentials
from jobyard.access.accounts import Accounts
from jobyard.access.audit import Audit
from jobyard.access.gate import SESSION_TTL, Gate
from jobyard.access.throttle import PER_USER
from jobyard.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts, Unauthorized
from jobyard.store import Store

PASSWORD = "a-long-enough-password"
ADDRESS = "10.1.2.3"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sql(sqlite_url: str) -> Iterator[Store]:
    store = Store(sqlite_url)
    yield store
    store.close()


@pytest.fixture
def accounts(sql: Store, clock: Clock) -> Accounts:
    return Accounts(sql, clock)


@pytest.fixture
def gate(sql: Store, clock: Clock) -> Gate:
    return Gate(sql, Audit(sql, clock), clock)


def change_before_a_session_is_stored(
    sql: Store, monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]
) -> None:
    """Make ``change`` land just before the store keeps the next session: after the
    password that opens it was checked, the race a login and a renewal look again for."""
    store_session = sql.access.add_session

    def changed_meanwhile(*args: object) -> None:
        change()
        store_session(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sql.access, "add_session", changed_meanwhile)


def acting(accounts: Accounts, name: str) -> Principal:
    user = accounts.user(name)
    return Principal(user.id, user.name, user.role, "password")


# -- users --------------------------------------------------------------------------
def test_a_user_is_added_once_with_a_valid_name_and_password(accounts: Accounts) -> None:
    ann = accounts.add_user("ann@example.org", Role.OPERATOR, PASSWORD)
    assert (ann.name, ann.role) == ("ann@example.org", Role.OPERATOR)
    with pytest.raises(Conflict):
        accounts.add_user("ann@example.org", Role.VIEWER, PASSWORD)
    for bad in ("", "-ann", "ann smith", "x" * 101, "ann/../x"):
        with pytest.raises(Invalid) as caught:
            accounts.add_user(bad, Role.VIEWER, PASSWORD)
        assert caught.value.errors[0]["field"] == "name"
    with pytest.raises(Invalid) as caught:
        accounts.add_user("bob", Role.VIEWER, "short")
    assert caught.value.errors[0]["field"] == "password"
    assert [u.name for u in accounts.users()] == ["ann@example.org"]


def refused(attempt: Callable[[], object], field: str) -> str:
    """What ``attempt`` is refused for (:class:`Invalid`, about ``field`` alone)."""
    with pytest.raises(Invalid) as caught:
        attempt()
    [error] = caught.value.errors
    assert error["field"] == field
    return error["message"]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("nul\x00pass-123", "contains a NUL character"),
        ("lone-\ud800-half", "contains a lone surrogate (not Unicode text)"),
    ],
)
def test_a_password_is_text_the_api_takes_on_every_path(
    accounts: Accounts, gate: Gate, bad: str, why: str
) -> None:
    """Else a password set on the database or from the page could never be given to the API
    as the current one, to change it again."""
    assert refused(lambda: accounts.first_admin(bad), "password") == why  # no user yet
    assert refused(lambda: accounts.add_user("ann", Role.VIEWER, bad), "password") == why
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    assert refused(lambda: accounts.set_password("ann", bad), "password") == why
    assert refused(lambda: accounts.check_new_password(PASSWORD, bad), "new_password") == why
    assert [u.name for u in accounts.users()] == ["ann"]
    assert gate.password("ann", PASSWORD, ADDRESS).name == "ann"


def test_the_last_admin_can_be_neither_removed_nor_demoted(accounts: Accounts) -> None:
    accounts.add_user("root", Role.ADMIN, PASSWORD)
    accounts.add_user("ann", Role.OPERATOR, PASSWORD)
    for change in (
        lambda: accounts.remove_user("root"),
        lambda: accounts.set_role("root", Role.OPERATOR),
        lambda: accounts.set_role("root", Role.VIEWER),
    ):
        with pytest.raises(Conflict, match="last admin"):
            change()
    assert accounts.user("root").role is Role.ADMIN
    assert accounts.set_role("root", Role.ADMIN).role is Role.ADMIN  # no change is fine
    accounts.remove_user("ann")  # others go


def test_with_two_admins_one_may_go_but_not_the_second(accounts: Accounts) -> None:
    accounts.add_user("root", Role.ADMIN, PASSWORD)
    accounts.add_user("ann", Role.ADMIN, PASSWORD)
    assert accounts.set_role("ann", Role.VIEWER).role is Role.VIEWER
    with pytest.raises(Conflict):
        accounts.remove_user("root")
    accounts.set_role("ann", Role.ADMIN)
    accounts.remove_user("root")
    with pytest.raises(Conflict):
        accounts.set_role("ann", Role.OPERATOR)
    assert [(u.name, u.role) for u in accounts.users()] == [("ann", Role.ADMIN)]


def test_changing_or_removing_nobody_is_not_found(accounts: Accounts) -> None:
    accounts.add_user("root", Role.ADMIN, PASSWORD)
    with pytest.raises(NotFound):
        accounts.remove_user("ghost")
    with pytest.raises(NotFound):
        accounts.set_role("ghost", Role.ADMIN)
    with pytest.raises(NotFound):
        accounts.set_password("ghost", PASSWORD)
    with pytest.raises(NotFound):
        accounts.user("ghost")


def test_the_first_admin_is_made_once(accounts: Accounts, gate: Gate) -> None:
    made = accounts.first_admin(None)
    assert made is not None
    assert gate.password("admin", made, ADDRESS).role is Role.ADMIN
    assert accounts.first_admin(None) is None
    assert accounts.first_admin("another-password") is None
    assert gate.password("admin", made, ADDRESS).name == "admin"
    assert [u.name for u in accounts.users()] == ["admin"]


def test_a_given_first_admin_password_is_used_and_must_be_long_enough(
    accounts: Accounts, gate: Gate
) -> None:
    with pytest.raises(Invalid):
        accounts.first_admin("short")
    assert accounts.users() == []
    assert accounts.first_admin("chosen-password") is None  # nothing to show
    assert gate.password("admin", "chosen-password", ADDRESS).role is Role.ADMIN


# -- tokens -------------------------------------------------------------------------
def test_a_token_is_at_most_its_owners_role(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("ann", Role.OPERATOR, PASSWORD)
    ann = acting(accounts, "ann")
    with pytest.raises(Forbidden):
        accounts.add_token(ann, "ci", Role.ADMIN, None)
    made = accounts.add_token(ann, "ci", None, timedelta(days=1))
    assert (made.token.role, made.token.user) == (Role.OPERATOR, "ann")
    assert made.token.expires_at == clock.now + timedelta(days=1)
    assert accounts.add_token(ann, "ro", Role.VIEWER, None).token.expires_at is None
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(Invalid):
            accounts.add_token(ann, bad, None, None)


def test_tokens_are_seen_and_revoked_by_their_owner_or_an_admin(accounts: Accounts) -> None:
    accounts.add_user("root", Role.ADMIN, PASSWORD)
    accounts.add_user("ann", Role.OPERATOR, PASSWORD)
    accounts.add_user("bob", Role.OPERATOR, PASSWORD)
    root, ann, bob = (acting(accounts, n) for n in ("root", "ann", "bob"))
    anns = accounts.add_token(ann, "ci", None, None).token
    assert [t.id for t in accounts.tokens(ann)] == [anns.id]
    assert accounts.tokens(bob) == []
    with pytest.raises(Forbidden):
        accounts.tokens(bob, everyone=True)
    assert [t.id for t in accounts.tokens(root, everyone=True)] == [anns.id]
    with pytest.raises(NotFound):
        accounts.revoke_token(bob, anns.id)
    assert accounts.tokens(ann)[0].revoked_at is None
    assert accounts.revoke_token(root, anns.id).revoked_at is not None
    with pytest.raises(NotFound):
        accounts.revoke_token(root, 999_999)


# -- the gate -----------------------------------------------------------------------
def test_a_token_works_until_it_expires(accounts: Accounts, gate: Gate, clock: Clock) -> None:
    accounts.add_user("ann", Role.OPERATOR, PASSWORD)
    made = accounts.add_token(acting(accounts, "ann"), "ci", None, timedelta(minutes=5))
    who = gate.token(made.secret)
    assert (who.name, who.role, who.via, who.token_id) == (
        "ann",
        Role.OPERATOR,
        "token",
        made.token.id,
    )
    clock.now += timedelta(minutes=5)
    with pytest.raises(Unauthorized):
        gate.token(made.secret)
    with pytest.raises(Unauthorized):
        gate.token(made.secret + "x")


def test_a_tokens_role_is_capped_by_its_owners_current_role(accounts: Accounts, gate: Gate) -> None:
    accounts.add_user("root", Role.ADMIN, PASSWORD)
    accounts.add_user("ann", Role.ADMIN, PASSWORD)
    made = accounts.add_token(acting(accounts, "ann"), "ci", Role.OPERATOR, None)
    assert gate.token(made.secret).role is Role.OPERATOR
    accounts.set_role("ann", Role.VIEWER)
    assert gate.token(made.secret).role is Role.VIEWER
    accounts.set_role("ann", Role.ADMIN)
    assert gate.token(made.secret).role is Role.OPERATOR  # never above the token's own


def test_a_session_lasts_its_time(accounts: Accounts, gate: Gate, clock: Clock) -> None:
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    secret, who = gate.login("ann", PASSWORD, ADDRESS)
    assert who.csrf
    assert gate.session(secret).csrf == who.csrf
    clock.now += SESSION_TTL - timedelta(seconds=1)
    assert gate.session(secret).name == "ann"
    clock.now += timedelta(seconds=1)
    with pytest.raises(Unauthorized):
        gate.session(secret)


def test_logout_and_a_new_password_end_sessions(accounts: Accounts, gate: Gate) -> None:
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    first, _ = gate.login("ann", PASSWORD, ADDRESS)
    second, _ = gate.login("ann", PASSWORD, ADDRESS)
    gate.logout(first, ADDRESS)
    with pytest.raises(Unauthorized):
        gate.session(first)
    assert gate.session(second).name == "ann"
    accounts.set_password("ann", "a-new-long-password")
    with pytest.raises(Unauthorized):
        gate.session(second)


def test_a_login_racing_a_password_change_keeps_no_session(
    accounts: Accounts, gate: Gate, sql: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that lands while a login checks the old password (the slow hash) ends the
    sessions stored so far, not the login's, stored just after: the login looks again."""
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    change_before_a_session_is_stored(
        sql, monkeypatch, lambda: accounts.set_password("ann", "a-new-long-password")
    )
    with pytest.raises(Unauthorized, match="changed while logging in"):
        gate.login("ann", PASSWORD, ADDRESS)
    monkeypatch.undo()
    assert sql.access.remove_sessions("ann") == 0  # none was left behind
    secret, _ = gate.login("ann", "a-new-long-password", ADDRESS)
    assert gate.session(secret).name == "ann"


def test_a_session_renewed_after_a_change_does_not_outlive_another_change(
    accounts: Accounts, gate: Gate, sql: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session a password was changed from is renewed; another change (or a removal)
    that lands before the renewal is stored ended the others, and ends this one too."""
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    secret, who = gate.login("ann", PASSWORD, ADDRESS)
    accounts.set_password("ann", "a-new-long-password")
    renewed = gate.renewed_session(who, "a-new-long-password")
    assert gate.session(renewed).csrf == who.csrf
    with pytest.raises(Unauthorized):
        gate.session(secret)
    change_before_a_session_is_stored(
        sql, monkeypatch, lambda: accounts.set_password("ann", "an-admins-reset-password")
    )
    with pytest.raises(Unauthorized, match="changed again meanwhile"):
        gate.renewed_session(who, "a-new-long-password")
    monkeypatch.undo()
    assert sql.access.remove_sessions("ann") == 0  # none was left behind


def test_a_remembered_password_stops_working_once_changed(accounts: Accounts, gate: Gate) -> None:
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    assert gate.password("ann", PASSWORD, ADDRESS).name == "ann"
    assert gate.password("ann", PASSWORD, ADDRESS).name == "ann"  # from memory now
    accounts.set_password("ann", "a-new-long-password")
    with pytest.raises(Unauthorized):
        gate.password("ann", PASSWORD, ADDRESS)
    assert gate.password("ann", "a-new-long-password", ADDRESS).name == "ann"
    accounts.remove_user("ann")
    with pytest.raises(Unauthorized):
        gate.password("ann", "a-new-long-password", ADDRESS)


def test_a_stream_checking_its_password_again_is_no_login_attempt(
    accounts: Accounts, gate: Gate
) -> None:
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    assert gate.password("ann", PASSWORD, ADDRESS).name == "ann"
    assert gate.password_again("ann", PASSWORD).name == "ann"
    accounts.set_password("ann", "a-new-long-password")
    for _ in range(20):  # as many open streams: none counts as a failed login
        with pytest.raises(Unauthorized, match="password of 'ann' was changed"):
            gate.password_again("ann", PASSWORD)
    assert gate.throttle.wait("ann", ADDRESS) == 0
    assert gate.password("ann", "a-new-long-password", ADDRESS).name == "ann"
    accounts.remove_user("ann")
    with pytest.raises(Unauthorized, match="user 'ann' was removed"):
        gate.password_again("ann", "a-new-long-password")


def test_a_removed_users_token_is_refused(accounts: Accounts, gate: Gate) -> None:
    accounts.add_user("root", Role.ADMIN, PASSWORD)
    accounts.add_user("ann", Role.OPERATOR, PASSWORD)
    made = accounts.add_token(acting(accounts, "ann"), "ci", None, None)
    accounts.remove_user("ann")
    with pytest.raises(Unauthorized):
        gate.token(made.secret)


def test_a_token_made_with_a_token_ends_no_later_than_it(
    accounts: Accounts, gate: Gate, clock: Clock
) -> None:
    accounts.add_user("ann", Role.OPERATOR, PASSWORD)
    short = accounts.add_token(acting(accounts, "ann"), "short", None, timedelta(hours=1))
    via_token = gate.token(short.secret)
    end = clock.now + timedelta(hours=1)
    assert accounts.add_token(via_token, "forever", None, None).token.expires_at == end
    assert accounts.add_token(via_token, "long", None, timedelta(days=9)).token.expires_at == end
    sooner = accounts.add_token(via_token, "sooner", None, timedelta(minutes=5))
    assert sooner.token.expires_at == clock.now + timedelta(minutes=5)
    lasting = accounts.add_token(acting(accounts, "ann"), "lasting", None, None)
    assert (
        accounts.add_token(gate.token(lasting.secret), "any", None, None).token.expires_at is None
    )


def test_an_unknown_name_costs_a_password_check_like_a_known_one(
    accounts: Accounts, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the time of a failed login tells whether the name exists."""
    accounts.add_user("ann", Role.VIEWER, PASSWORD)
    checked: list[str] = []
    real = credentials.password_matches

    def counted(stored: str, password: str) -> bool:
        checked.append(password)
        return real(stored, password)

    monkeypatch.setattr(credentials, "password_matches", counted)
    for name in ("ann", "nobody"):
        with pytest.raises(Unauthorized):
            gate.password(name, "a-wrong-password", ADDRESS)
    assert checked == ["a-wrong-password", "a-wrong-password"]


def test_parallel_guesses_get_no_more_checks_than_the_limit(accounts: Accounts, gate: Gate) -> None:
    # A failure counts once its slow check is over: guesses sent all at once were all
    # checked before the first one counted (40 checked where 10 may be).
    accounts.add_user("vic", Role.VIEWER, PASSWORD)
    guesses = [f"wrong-guess-{i:02}" for i in range(3 * PER_USER)]
    with ThreadPoolExecutor(len(guesses)) as pool:
        outcomes = list(pool.map(lambda guess: attempt(gate, "vic", guess), guesses))
    assert outcomes.count("401") == PER_USER
    assert outcomes.count("429") == len(guesses) - PER_USER
    # The user's own password is refused too, until the window is over.
    assert attempt(gate, "vic", PASSWORD) == "429"


def test_a_burst_with_the_right_password_is_not_throttled(accounts: Accounts, gate: Gate) -> None:
    accounts.add_user("vic", Role.VIEWER, PASSWORD)
    with ThreadPoolExecutor(3 * PER_USER) as pool:
        outcomes = list(pool.map(lambda _: attempt(gate, "vic", PASSWORD), range(3 * PER_USER)))
    assert outcomes == ["200"] * (3 * PER_USER)


def attempt(gate: Gate, name: str, password: str) -> str:
    try:
        gate.password(name, password, ADDRESS)
    except Unauthorized:
        return "401"
    except TooManyAttempts:
        return "429"
    return "200"
