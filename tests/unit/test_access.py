"""The pure parts of access control: roles, the login throttle, tokens, secrets, redirects,
an open stream's recheck."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from jobyard.access import Principal, Role, Token
from jobyard.access import credentials as cred
from jobyard.access.audit import escaped
from jobyard.access.roles import with_article
from jobyard.access.throttle import PER_ADDRESS, PER_USER, WINDOW, Throttle
from jobyard.api.recheck import Recheck
from jobyard.errors import Forbidden, Unauthorized
from jobyard.settings import Settings
from jobyard.ui.login import local
from tests.harness import wait_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# -- roles ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Role.VIEWER}),
        (Role.OPERATOR, {Role.VIEWER, Role.OPERATOR}),
        (Role.ADMIN, {Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    ],
)
def test_a_role_allows_itself_and_the_roles_below(role: Role, allowed: set[Role]) -> None:
    assert {needed for needed in Role if role.allows(needed)} == allowed


def test_roles_are_ranked_in_their_order_and_named_by_their_value() -> None:
    assert [role.rank for role in Role] == [0, 1, 2]
    assert Role("operator") is Role.OPERATOR
    assert f"{Role.ADMIN}" == "admin"


# -- the throttle ---------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: Throttle, times: int, name: str = "ann", address: str = "10.0.0.1") -> None:
    for _ in range(times):
        throttle.failed(name, address)


def test_a_role_takes_its_article() -> None:
    assert [with_article(role) for role in Role] == ["a viewer", "an operator", "an admin"]


def test_an_audited_name_has_what_no_database_stores_escaped() -> None:
    assert escaped("adm\x00in\ud800\t\x7f é") == "adm\\x00in\\ud800\\t\\x7f é"
    assert escaped("ann@example.org") == "ann@example.org"


def test_the_tenth_failure_locks_the_name_out_from_that_address() -> None:
    clock = Clock()
    throttle = Throttle(clock)
    fail(throttle, PER_USER - 1)
    assert throttle.wait("ann", "10.0.0.1") == 0
    fail(throttle, 1)
    assert throttle.wait("ann", "10.0.0.1") == WINDOW
    assert throttle.wait("ann", "10.0.0.2") == 0  # another address
    assert throttle.wait("bob", "10.0.0.1") == 0  # another name


def test_a_lock_out_ends_as_the_first_failures_leave_the_window() -> None:
    clock = Clock()
    throttle = Throttle(clock)
    fail(throttle, 1)
    clock.now += 60
    fail(throttle, PER_USER - 1)
    clock.now += 30
    assert throttle.wait("ann", "10.0.0.1") == WINDOW - 90  # until the first one is old
    clock.now += WINDOW - 90
    assert throttle.wait("ann", "10.0.0.1") == 0  # nine left in the window
    fail(throttle, 1)
    assert throttle.wait("ann", "10.0.0.1") == 60  # until the nine made at 1060 are old


def test_a_success_forgets_the_names_failures() -> None:
    throttle = Throttle(Clock())
    fail(throttle, PER_USER - 1)
    throttle.succeeded("ann", "10.0.0.1")
    fail(throttle, PER_USER - 1)
    assert throttle.wait("ann", "10.0.0.1") == 0


def test_many_names_from_one_address_lock_the_address_out() -> None:
    throttle = Throttle(Clock())
    for i in range(PER_ADDRESS):
        throttle.failed(f"user{i}", "10.0.0.1")
        throttle.succeeded(f"user{i}", "10.0.0.1")  # a success does not clear the address
    assert throttle.wait("someone-else", "10.0.0.1") == WINDOW
    assert throttle.wait("someone-else", "10.0.0.2") == 0


def test_an_empty_name_is_not_the_whole_address() -> None:
    # HTTP Basic lets a client send an empty user name: it is one more name, and its
    # failures must not count twice towards the address's limit.
    throttle = Throttle(Clock())
    fail(throttle, PER_ADDRESS // 2, name="")
    assert throttle.wait("ann", "10.0.0.1") == 0


# -- tokens ---------------------------------------------------------------------------
def token(expires_at: datetime | None = None, revoked_at: datetime | None = None) -> Token:
    return Token(1, 7, "ann", "ci", Role.VIEWER, T0, expires_at, revoked_at)


def test_a_token_is_valid_until_it_expires_or_is_revoked() -> None:
    second = timedelta(seconds=1)
    assert token().valid(T0 + timedelta(days=3650))
    assert token(expires_at=T0 + second).valid(T0)
    assert not token(expires_at=T0 + second).valid(T0 + second)  # at its end: over
    assert not token(expires_at=T0).valid(T0 + second)
    assert not token(revoked_at=T0).valid(T0)
    assert not token(expires_at=T0 + second, revoked_at=T0).valid(T0)


# -- secrets --------------------------------------------------------------------------
def test_a_password_hash_is_argon2id_salted_and_verifies() -> None:
    first, second = cred.hash_password("correct horse"), cred.hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert "correct horse" not in first
    assert cred.password_matches(first, "correct horse")
    assert cred.password_matches(second, "correct horse")
    assert not cred.password_matches(first, "correct horsE")
    assert not cred.password_matches(first, "")


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=1,t=1,p=1$xx$yy"])
def test_a_broken_stored_hash_matches_nothing(stored: str) -> None:
    assert not cred.password_matches(stored, "anything")


def test_a_non_ascii_password_hashes_and_verifies() -> None:
    stored = cred.hash_password("pässwörd-ñ-密码")
    assert cred.password_matches(stored, "pässwörd-ñ-密码")
    assert not cred.password_matches(stored, "passwörd-ñ-密码")


def test_secrets_are_long_random_and_stored_as_their_sha256() -> None:
    secrets = {cred.new_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith(cred.TOKEN_PREFIX) and len(s) >= 40 for s in secrets)
    assert cred.new_secret("jys_").startswith("jys_")
    one = next(iter(secrets))
    assert cred.digest(one) == cred.digest(one)
    assert len(cred.digest(one)) == 64
    assert int(cred.digest(one), 16) >= 0  # hex
    assert len({cred.digest(s) for s in secrets}) == 100
    assert one not in cred.digest(one)


def test_a_made_up_password_is_long_enough_and_new_each_time() -> None:
    made = {cred.new_password() for _ in range(20)}
    assert len(made) == 20
    assert all(len(p) == 20 for p in made)


# -- where a form login may go on to ----------------------------------------------------
@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/docs", "/docs"),
        ("/jobs?state=failed&sort=-created_at", "/jobs?state=failed&sort=-created_at"),
        ("/jobs/12#log", "/jobs/12#log"),
        ("", "/"),
        ("jobs", "/"),
        ("https://evil.example/x", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example/x", "/"),
        ("\\/evil.example/x", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http:/evil.example", "/"),
    ],
)
def test_next_is_a_path_on_this_server_only(target: str, landing: str) -> None:
    assert local(target) == landing


# -- the first admin's password in the settings ---------------------------------------
def test_an_empty_admin_password_is_unset() -> None:
    assert Settings.from_env({"JOBYARD_ADMIN_PASSWORD": ""}).admin_password is None
    given = Settings.from_env({"JOBYARD_ADMIN_PASSWORD": "long-enough"}).admin_password
    assert given is not None
    assert given.get_secret_value() == "long-enough"


def test_a_short_admin_password_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        Settings.from_env({"JOBYARD_ADMIN_PASSWORD": "short"})


# -- an open stream's recheck -----------------------------------------------------------
def test_a_streams_recheck_refuses_a_role_below_the_streams() -> None:
    viewer = Principal(1, "vera", Role.VIEWER, "token", token_id=3)
    recheck = Recheck(lambda: viewer, Role.OPERATOR, interval=60)
    assert not recheck.due()  # its request was checked just now
    assert 59 < recheck.until_due() <= 60
    refused = anyio.run(recheck.refusal)
    assert isinstance(refused, Forbidden)
    assert refused.detail == "this needs the operator role; vera acts as viewer"
    assert anyio.run(Recheck(lambda: viewer, Role.VIEWER, 60).refusal) is None


def test_a_streams_recheck_refuses_what_its_credential_check_refuses() -> None:
    def revoked() -> Principal:
        raise Unauthorized("the token is unknown, expired or revoked")

    recheck = Recheck(revoked, Role.VIEWER, interval=0.0)
    assert recheck.due()
    assert isinstance(anyio.run(recheck.refusal), Unauthorized)
    assert anyio.run(Recheck(None, None, 0.0).refusal) is None  # a route without a guard


def test_checks_under_way_from_an_address_count_towards_its_limit() -> None:
    throttle = Throttle(Clock())
    fail(throttle, 10, name="earlier")
    with ExitStack() as under_way:
        waits = [
            under_way.enter_context(throttle.turn(f"user{i}", "10.0.0.1"))
            for i in range(PER_ADDRESS - 10)
        ]
        assert waits == [0.0] * (PER_ADDRESS - 10)
        with throttle.turn("one-too-many", "10.0.0.1") as wait:
            assert wait > 0
        with throttle.turn("one-too-many", "10.0.0.2") as wait:
            assert wait == 0  # another address
    with throttle.turn("one-too-many", "10.0.0.1") as wait:
        assert wait == 0  # none under way: 10 failures of 50


def test_checks_under_way_hold_back_other_checks_not_a_known_password() -> None:
    throttle = Throttle(Clock())
    fail(throttle, PER_ADDRESS - 5, name="typos")
    with ExitStack() as under_way:
        for i in range(5):
            assert under_way.enter_context(throttle.turn(f"user{i}", "10.0.0.1")) == 0
        with throttle.turn("one-more", "10.0.0.1") as wait:
            assert wait > 0  # no sixth check while five may still fail
        # What failed decides a request that needs no check (a password that matched).
        assert throttle.wait("someone", "10.0.0.1") == 0


def test_a_names_attempts_from_an_address_take_turns() -> None:
    throttle = Throttle(Clock())
    inside, go_on = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with throttle.turn("ann", "10.0.0.1"):
            inside.set()
            go_on.wait(10)
            order.append("first")
            throttle.failed("ann", "10.0.0.1")

    def second() -> None:
        with throttle.turn("ann", "10.0.0.1"):
            order.append("second")

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(10)
    two = threading.Thread(target=second)
    two.start()
    wait_for(lambda: throttle._turns[("ann", "10.0.0.1")][1] == 2, what="the second to wait")
    with throttle.turn("bob", "10.0.0.1") as wait:  # another name does not wait
        assert wait == 0
    assert order == []  # the second waits for the first's turn
    go_on.set()
    one.join(10)
    two.join(10)
    assert order == ["first", "second"]
    assert throttle._turns == {}  # no turn kept once nobody waits for it
