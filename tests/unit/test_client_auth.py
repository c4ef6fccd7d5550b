"""The Python client's credentials: the saved login goes to its own server only; wrong
arguments are refused by name before anything is sent."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from jobyard.client import Client
from jobyard.client.auth import (
    forget_login,
    login_note,
    login_path,
    normalise,
    old_token_path,
    save_login,
    saved_token,
)

SECRET = "jy_the-saved-secret"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config home of the test's own, and no credentials in the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("JOBYARD_TOKEN", "JOBYARD_USER", "JOBYARD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def recorded(server: str, seen: list[httpx.Request]) -> Client:
    """A Client of ``server`` whose requests land in ``seen`` (answered with no jobs)."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "total": 0, "page": 1, "per_page": 50})

    return Client(server, transport=httpx.MockTransport(answer))


def sent_authorization(server: str) -> str | None:
    """The Authorization header a Client of ``server`` sends with a request."""
    seen: list[httpx.Request] = []
    with recorded(server, seen) as client:
        client.jobs()
    return seen[0].headers.get("authorization")


@pytest.mark.parametrize(
    ("given", "same"),
    [
        ("localhost:8000", "http://localhost:8000"),
        ("HTTP://LocalHost:8000/", "http://localhost:8000"),
        ("https://jobs.example:443/", "https://jobs.example"),
        ("http://jobs.example:80/yard/", "http://jobs.example/yard"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_a_server_url_has_one_spelling(given: str, same: str) -> None:
    assert normalise(given) == same


def test_the_saved_token_is_sent_to_its_own_server_only(home: Path) -> None:
    path = save_login("http://jobs.example:8000/", SECRET)
    assert path == login_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sent_authorization("HTTP://jobs.example:8000") == f"Bearer {SECRET}"
    for other in ("http://127.0.0.1:8000", "http://jobs.example:8001", "https://jobs.example:8000"):
        assert sent_authorization(other) is None, other
        assert login_note(other) == "the saved login is for http://jobs.example:8000"
    assert login_note("jobs.example:8000") == ""


def test_logins_to_several_servers_are_kept_side_by_side(home: Path) -> None:
    save_login("http://a.example:8000", "jy_a")
    save_login("http://b.example:8000", "jy_b")  # keeps a's: its token is still valid
    assert sent_authorization("http://a.example:8000") == "Bearer jy_a"
    assert sent_authorization("http://b.example:8000") == "Bearer jy_b"
    said = "the saved logins are for http://a.example:8000, http://b.example:8000"
    assert login_note("http://c.example:8000") == said
    save_login("http://a.example:8000/", "jy_a2")  # the same server: replaced
    assert saved_token("http://a.example:8000") == "jy_a2"
    forget_login("http://a.example:8000")
    assert saved_token("http://a.example:8000") is None
    assert saved_token("http://b.example:8000") == "jy_b"
    assert forget_login("http://b.example:8000") == login_path()
    assert not login_path().exists()  # with the last one, the file goes


def test_a_login_file_of_one_server_is_read(home: Path) -> None:
    login_path().parent.mkdir(parents=True)
    login_path().write_text('{"server": "http://a.example:8000/", "token": "jy_a"}\n')
    assert saved_token("http://a.example:8000") == "jy_a"
    save_login("http://b.example:8000", "jy_b")
    assert saved_token("http://a.example:8000") == "jy_a"  # kept in the new form


def test_an_older_logins_bare_token_is_never_sent(home: Path) -> None:
    old = old_token_path()
    old.parent.mkdir(parents=True)
    old.write_text(SECRET + "\n")
    assert saved_token("http://127.0.0.1:8000") is None
    assert sent_authorization("http://127.0.0.1:8000") is None
    assert "an older jobyard login" in login_note("http://127.0.0.1:8000")
    save_login("http://127.0.0.1:8000", "jy_new")  # a new login removes it
    assert not old.exists()


def test_a_token_that_is_not_a_str_is_refused_by_name(home: Path) -> None:
    with pytest.raises(TypeError, match=r"token must be the secret .*\.secret"):
        Client("http://jobs.example", token=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("since", ["yesterday", "2h", 1_700_000_000])
def test_a_time_that_is_not_a_datetime_is_refused_by_name(home: Path, since: object) -> None:
    seen: list[httpx.Request] = []
    with recorded("http://jobs.example", seen) as client:
        with pytest.raises(TypeError, match="since must be a datetime"):
            client.jobs(since=since)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="until must be a datetime"):
            client.audit(until=since)  # type: ignore[arg-type]
    assert seen == []  # refused before anything was sent


def test_a_datetime_is_sent_with_its_offset(home: Path) -> None:
    seen: list[httpx.Request] = []
    at = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    with recorded("http://jobs.example", seen) as client:
        client.jobs(since=at)
    assert seen[0].url.params["since"] == at.astimezone().isoformat()
