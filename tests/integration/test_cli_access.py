"""The real ``jobyard`` access commands as subprocesses: login, credentials, tokens,
audit against a real server, and ``jobyard user`` against real databases.

The commands here run without the tests' admin in their environment (see
``tests/conftest.py``): each passes the credentials it means, and keeps its saved
token in a ``XDG_CONFIG_HOME`` of its own.
"""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.access import credentials
from jobyard.clock import utcnow
from jobyard.store import Store
from tests.databases import Servers
from tests.harness import ADMIN, Server, shared_server
from tests.receivers import hook_server

server = shared_server(backends=["sqlite"])
AS_ADMIN = ("--user", ADMIN[0], "--password", ADMIN[1])
PASSWORD = "a-long-enough-password"
CLIENT_COMMANDS = [
    "jobs", "submit", "kill", "logs", "watch", "runs list", "whoami", "passwd", "tokens", "audit",
]  # fmt: skip


class Cli:
    """``jobyard`` in a subprocess with no credentials but those a call gives."""

    def __init__(self, server_url: str, config_home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        self.env |= {"JOBYARD_SERVER": server_url, "XDG_CONFIG_HOME": str(config_home)}
        self.env |= {"COLUMNS": "200", "NO_COLOR": "1"}
        self.token_file = config_home / "jobyard" / "login.json"
        self.old_token_file = config_home / "jobyard" / "token"  # an older jobyard login's

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobyard", *args],
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env | (env or {}),
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        result = self.run(*args, stdin=stdin, env=env)
        assert result.returncode == 0, (result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", env=env))

    def error(self, code: int, *args: str, stdin: str | None = None) -> str:
        """The one error line of a command that must fail with ``code``."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode == code, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("jobyard: error: ")
        return lines[0]


def on_terminal(cli: Cli, *args: str, answers: list[str]) -> tuple[int, str]:
    """Run ``jobyard`` on a pseudo-terminal, typing each answer at each ``…: `` prompt."""
    main, child = os.openpty()
    command = [sys.executable, "-m", "jobyard", *args]
    with subprocess.Popen(
        command, stdin=child, stdout=child, stderr=child, env=cli.env, start_new_session=True
    ) as proc:
        os.close(child)
        output, pending = b"", list(answers)
        deadline = time.monotonic() + 60
        while True:
            ready, _, _ = select.select([main], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"no prompt or end in time: {output!r}"
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            output += chunk
            # getpass turns echo off before it writes the space after the colon
            if pending and output.endswith(b": "):
                os.write(main, pending.pop(0).encode() + b"\n")
        os.close(main)
        return proc.wait(timeout=30), output.decode()


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    return Cli(server.url, tmp_path / "config")


def tag() -> str:
    return uuid.uuid4().hex[:8]


def add_user(cli: Cli, database_url: str, role: str, password: str = PASSWORD) -> str:
    name = f"{role}-{tag()}"
    args = ("user", "add", name, "--role", role, "--password-stdin")
    cli.ok(*args, "--database-url", database_url, stdin=password + "\n")
    return name


def test_login_saves_a_private_token_that_later_commands_use(cli: Cli) -> None:
    assert "jobyard login" in cli.error(6, "jobs")
    login = ("login", "--user", "admin", "--name", "laptop", "--password-stdin")
    said = cli.ok(*login, stdin=ADMIN[1])
    assert "logged in to" in said
    assert str(cli.token_file) in said
    assert stat.S_IMODE(cli.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.token_file.parent.stat().st_mode) == 0o700
    saved = json.loads(cli.token_file.read_text())["logins"]
    assert list(saved) == [cli.env["JOBYARD_SERVER"]]
    secret = saved[cli.env["JOBYARD_SERVER"]]
    me = cli.json("whoami")
    assert (me["name"], me["role"], me["via"]) == ("admin", "admin", "token")
    job = cli.json("submit", "echo", "text=logged-in", "--wait")
    assert job["state"] == "succeeded"
    mine = [t for t in cli.json("tokens")["items"] if t["id"] == me["token_id"]]
    assert [(t["name"], t["revoked_at"]) for t in mine] == [("laptop", None)]

    assert f"token {me['token_id']} revoked" in cli.ok("logout")
    assert not cli.token_file.exists()
    assert "unknown, expired or revoked" in cli.error(6, "whoami", "--token", secret)
    cli.error(6, "jobs")
    assert "not logged in" in cli.ok("logout")


def login_as_admin(cli: Cli) -> str:
    """Log in with the CLI; the saved secret."""
    cli.ok("login", "--user", "admin", "--password-stdin", stdin=ADMIN[1])
    secret: str = json.loads(cli.token_file.read_text())["logins"][cli.env["JOBYARD_SERVER"]]
    return secret


def test_the_saved_token_is_sent_to_its_server_only(cli: Cli, server: Server) -> None:
    secret = login_as_admin(cli)
    with hook_server(statuses=[401]) as other:
        elsewhere = other.url.removesuffix("/hook")
        said = cli.run("kill", "1", env={"JOBYARD_SERVER": elsewhere})  # a POST first
        assert said.returncode == 6, said.stderr
        assert f"the saved login is for {server.url}" in said.stderr
        assert len(other.requests) == 1
        assert "authorization" not in {name.lower() for name in other.requests[0].headers}
        assert secret not in str(other.requests[0].headers)
    # The same server spelt otherwise is the same server.
    spelt = server.url.replace("http://", "HTTP://") + "/"
    assert cli.json("whoami", env={"JOBYARD_SERVER": spelt})["via"] == "token"
    said = cli.run("logout", env={"JOBYARD_SERVER": elsewhere})
    assert f"not logged in to {elsewhere}: the saved login is for {server.url}" in said.stdout
    assert cli.token_file.exists()  # still the login of the first server
    assert "revoked" in cli.ok("logout")


def test_a_token_saved_by_an_older_login_is_not_used(cli: Cli) -> None:
    secret = login_as_admin(cli)
    cli.token_file.rename(cli.old_token_file)
    cli.old_token_file.write_text(secret + "\n")  # the old format: the bare secret
    error = cli.error(6, "jobs")
    assert f"the token in {cli.old_token_file} (an older jobyard login) is not used" in error
    assert "removed it" in cli.ok("logout")
    assert not cli.old_token_file.exists()
    assert cli.json("whoami", "--token", secret)["via"] == "token"  # not revoked: not sent
    cli.old_token_file.write_text(secret + "\n")
    login_as_admin(cli)  # a new login replaces it
    assert not cli.old_token_file.exists()


def test_logging_in_again_revokes_the_token_it_replaces(cli: Cli) -> None:
    first = login_as_admin(cli)
    first_id = cli.json("whoami")["token_id"]
    said = cli.ok("login", "--user", "admin", "--password-stdin", stdin=ADMIN[1])
    assert f"the token saved before: token {first_id} revoked" in said
    assert "unknown, expired or revoked" in cli.error(6, "whoami", "--token", first)
    second = json.loads(cli.token_file.read_text())["logins"][cli.env["JOBYARD_SERVER"]]
    cli.ok("tokens", "revoke", str(cli.json("whoami")["token_id"]))  # as if by an admin
    third = cli.run("login", "--user", "admin", "--password-stdin", stdin=ADMIN[1])
    assert third.returncode == 0, third.stderr
    assert "saved before" not in third.stdout + third.stderr  # nothing left to revoke
    assert second not in cli.token_file.read_text()
    assert "revoked" in cli.ok("logout")


def test_logging_in_again_keeps_a_token_that_tokens_were_made_with(cli: Cli) -> None:
    """Revoking the replaced login's token revoked what was made with it: a CI's token
    made while logged in stopped working at the next login."""
    first = login_as_admin(cli)
    first_id = cli.json("whoami")["token_id"]
    made = cli.ok("tokens", "create", "for-ci", "--expires", "1h").strip()
    said = cli.run("login", "--user", "admin", "--password-stdin", stdin=ADMIN[1])
    assert said.returncode == 0, said.stderr
    assert f"the token saved before ({first_id}) is kept" in said.stderr
    assert "for-ci" in said.stderr
    assert cli.json("whoami", "--token", made)["name"] == "admin"  # still works
    assert cli.json("whoami", "--token", first)["token_id"] == first_id


def test_a_wrong_password_is_one_line_and_exit_6(cli: Cli) -> None:
    line = cli.error(6, "jobs", "--user", "admin", "--password", "not-it")
    assert "wrong user name or password" in line
    assert "--token/--user" in line
    assert "wrong user name or password" in cli.error(
        6, "login", "--user", "admin", "--password-stdin", stdin="not-it\n"
    )
    assert not cli.token_file.exists()
    assert "--password-stdin" in cli.error(2, "login", "--user", "admin")  # no terminal


def test_a_user_without_a_password_or_terminal_is_a_usage_error(cli: Cli) -> None:
    line = cli.error(2, "jobs", "-u", "admin")  # stdin is not a terminal
    assert line.endswith("no terminal to ask it on: set JOBYARD_PASSWORD (or pass --password)")
    assert "user admin" in line
    unreachable = {"JOBYARD_SERVER": "http://127.0.0.1:9"}
    said = cli.run("jobs", "-u", "admin", env=unreachable)
    assert said.returncode == 2, said.stderr  # refused before any request
    with_variable = cli.json("whoami", "-u", "admin", env={"JOBYARD_PASSWORD": ADMIN[1]})
    assert with_variable["via"] == "password"


def test_passwords_are_asked_hidden_on_a_terminal(cli: Cli, server: Server) -> None:
    code, shown = on_terminal(cli, "whoami", "--user", "admin", answers=[ADMIN[1]])
    assert code == 0, shown
    assert "Password of admin:" in shown
    assert "admin (admin) with a password" in shown
    assert ADMIN[1] not in shown  # not echoed
    name = f"typed-{tag()}"
    db = ("--database-url", server.database_url)
    code, shown = on_terminal(cli, "user", "add", name, *db, answers=[PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "Repeat for confirmation:" in shown
    assert PASSWORD not in shown
    code, shown = on_terminal(cli, "login", answers=[name, PASSWORD])
    assert code == 0, shown
    assert f"User: {name}" in shown  # a name is echoed, a password is not
    assert cli.json("whoami")["name"] == name


def test_credentials_typed_win_over_the_environment(cli: Cli) -> None:
    viewer = cli.ok("tokens", "create", "v", "--role", "viewer", *AS_ADMIN).strip()
    env_token = {"JOBYARD_TOKEN": "jy_not-a-token"}
    assert cli.json("whoami", *AS_ADMIN, env=env_token)["via"] == "password"
    env_user = {"JOBYARD_USER": ADMIN[0], "JOBYARD_PASSWORD": ADMIN[1]}
    assert cli.json("whoami", env=env_user)["via"] == "password"
    assert cli.json("whoami", "--token", viewer, env=env_user)["role"] == "viewer"
    assert cli.json("whoami", env={"JOBYARD_TOKEN": viewer})["role"] == "viewer"


def test_a_viewer_is_refused_changes_in_one_line(cli: Cli, server: Server) -> None:
    viewer = add_user(cli, server.database_url, "viewer")
    as_viewer = ("--user", viewer, "--password", PASSWORD)
    job = cli.json("submit", "echo", "text=x", "--hold", *AS_ADMIN)
    shown = cli.json("show", str(job["id"]), *as_viewer)
    assert shown["state"] == "held"
    line = cli.error(7, "kill", str(job["id"]), *as_viewer)
    assert line.endswith(f"this needs the operator role; {viewer} acts as viewer")
    assert "admin role" in cli.error(7, "audit", *as_viewer)
    assert server.job(job["id"])["state"] == "held"


def test_tokens_create_list_and_revoke(cli: Cli) -> None:
    name = f"ci-{tag()}"
    made = cli.run("tokens", "create", name, "--role", "viewer", "--expires", "2h", *AS_ADMIN)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("jy_")
    assert made.stdout.count("\n") == 1  # the secret alone: TOKEN=$(jobyard tokens create …)
    assert "shown this once" in made.stderr
    listed = {t["name"]: t for t in cli.json("tokens", *AS_ADMIN)["items"]}
    assert listed[name]["role"] == "viewer"
    assert listed[name]["expires_at"] is not None
    assert cli.json("whoami", "--token", secret)["role"] == "viewer"
    table = cli.ok("tokens", "--all", *AS_ADMIN)
    row = next(line for line in table.splitlines() if name in line)
    assert [cell.strip() for cell in row.split("│")[2:5]] == [name, "admin", "viewer"]
    assert "active" in row

    token_id = str(listed[name]["id"])
    assert cli.ok("tokens", "revoke", token_id, *AS_ADMIN).strip() == (
        f"token {token_id} ({name} of admin) revoked"
    )
    cli.error(6, "whoami", "--token", secret)
    assert "revoked" in next(r for r in cli.ok("tokens", *AS_ADMIN).splitlines() if name in r)
    forever = cli.json("tokens", "create", "forever", "--expires", "never", *AS_ADMIN)
    assert forever["token"]["expires_at"] is None
    assert forever["secret"].startswith("jy_")
    assert "bad token id" in cli.error(2, "tokens", "revoke", "abc", *AS_ADMIN)
    assert "needs a NAME" in cli.error(2, "tokens", "create", *AS_ADMIN)
    assert "unknown action" in cli.error(2, "tokens", "frob", *AS_ADMIN)
    assert "no token 999999" in cli.error(3, "tokens", "revoke", "999999", *AS_ADMIN)


def test_a_token_made_with_a_token_says_it_is_capped_and_goes_with_it(cli: Cli) -> None:
    login = ("login", "--user", "admin", "--expires", "1h", "--password-stdin")
    cli.ok(*login, stdin=ADMIN[1])
    session = cli.json("whoami")["token_id"]
    made_with = f"made with token {session}: revoking that one revokes this one too"
    names = []
    try:
        for asked in ("2h", "never"):
            names.append(name := f"long-{tag()}")
            made = cli.run("tokens", "create", name, "--expires", asked)
            assert made.returncode == 0, made.stderr
            lines = made.stderr.strip().splitlines()
            [capped] = [line for line in lines if line.startswith("capped: ")]
            assert capped.startswith("capped: a token made with a token ends no later than that")
            assert "--user" in capped
            assert lines[-1].startswith(made_with)
        names.append(name := f"short-{tag()}")
        shorter = cli.run("tokens", "create", name, "--expires", "30m")
        assert "capped" not in shorter.stderr
        assert made_with in shorter.stderr
        with_password = cli.run("tokens", "create", f"p-{tag()}", "--expires", "2h", *AS_ADMIN)
        assert "capped" not in with_password.stderr
        assert "made with token" not in with_password.stderr
    finally:
        said = cli.ok("logout")  # the saved login would be every later test's credential
    # The logout says which tokens went with the one it revoked (not the password's).
    assert f"token {session} revoked, with the tokens made with it: " in said
    assert all(name in said for name in names)
    assert "p-" not in said.split("made with it: ")[1]


def test_audit_lists_what_was_done(cli: Cli, server: Server) -> None:
    name = tag()
    job = cli.json("submit", "sleep", "seconds=30", "--name", name, *AS_ADMIN)
    cli.ok("kill", str(job["id"]), *AS_ADMIN)
    found = cli.json("audit", "--action", "submit,kill_job", "--since", "5m", *AS_ADMIN)
    mine = [e for e in found["items"] if e["target"].startswith(f"/api/v1/jobs/{job['id']}")]
    assert [(e["action"], e["actor"], e["outcome"]) for e in mine] == [
        ("kill_job", "admin", "ok"),
        ("submit", "admin", "ok"),
    ]
    viewer = add_user(cli, server.database_url, "viewer")  # on the database: audited too
    by_cli = cli.json("audit", "--search", f"user {viewer}", *AS_ADMIN)["items"]
    assert [(e["action"], e["via"], e["address"]) for e in by_cli] == [("add_user", "cli", "local")]
    assert by_cli[0]["actor"].startswith("cli:")
    assert cli.json("audit", "--since", "2099-01-01T00:00", *AS_ADMIN)["total"] == 0

    table = cli.ok("audit", "--since", "1h", *AS_ADMIN, env={"COLUMNS": "80"})
    assert f"/jobs/{job['id']}/kill" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "--since 'soon'" in cli.error(2, "audit", "--since", "soon", *AS_ADMIN)


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def new_database(request: pytest.FixtureRequest, servers: Servers, tmp_path: Path) -> Iterator[str]:
    """A database without any table, on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    with servers.scratch_database(request.param) as url:
        yield url


def test_user_commands_work_on_the_database(new_database: str, tmp_path: Path) -> None:
    cli = Cli("http://127.0.0.1:9", tmp_path / "config")  # no server: none is needed
    db = ("--database-url", new_database)
    said = cli.ok("user", "add", "root", "--role", "admin", "--password-stdin", *db, stdin=PASSWORD)
    assert said.strip() == "user root added (admin)"
    cli.ok("user", "add", "ann", "--password-stdin", *db, stdin=f"{PASSWORD}\n")
    users = cli.json("user", "list", *db)["items"]
    assert [(u["name"], u["role"]) for u in users] == [("ann", "viewer"), ("root", "admin")]

    assert cli.ok("user", "set-role", "ann", "operator", *db).strip() == "user ann: operator"
    cli.ok("user", "set-password", "ann", "--password-stdin", *db, stdin="another-password\n")
    assert _password_is(new_database, "ann", "another-password")
    assert "exists" in cli.error(4, "user", "add", "ann", "--password-stdin", *db, stdin=PASSWORD)
    assert "last admin" in cli.error(4, "user", "set-role", "root", "viewer", *db)
    assert "last admin" in cli.error(4, "user", "remove", "root", *db)
    assert cli.ok("user", "remove", "ann", *db).strip() == "user ann removed"
    assert "no user named 'ann'" in cli.error(3, "user", "remove", "ann", *db)

    actions = [(e.action, e.target, e.via) for e in _audit(new_database)]
    assert actions == [
        ("remove_user", "user ann", "cli"),
        ("change_user", "user ann", "cli"),
        ("change_user", "user ann", "cli"),
        ("add_user", "user ann", "cli"),
        ("add_user", "user root", "cli"),
    ]


def test_user_commands_show_a_table_and_refuse_bad_input(tmp_path: Path) -> None:
    """What does not depend on the backend, on SQLite alone: each command is a process."""
    cli = Cli("http://127.0.0.1:9", tmp_path / "config")
    db = ("--database-url", f"sqlite:///{tmp_path / 'users.db'}")
    cli.ok("user", "add", "ann", "--password-stdin", *db, stdin=PASSWORD)
    assert "ann" in cli.ok("user", "list", *db)
    assert "too short" in cli.error(2, "user", "add", "bo", "--password-stdin", *db, stdin="abc")
    # A name that exists is said first, whatever the password (which is not asked for).
    exists = cli.error(4, "user", "add", "ann", "--password-stdin", *db, stdin="abc")
    assert exists == "jobyard: error: a user named 'ann' exists"
    nul = "nul\x00pass-123\n"
    set_nul = ("user", "set-password", "ann", "--password-stdin", *db)
    assert "contains a NUL character" in cli.error(2, *set_nul, stdin=nul)
    assert "unknown role" in cli.error(2, "user", "set-role", "ann", "boss", *db)
    assert "--password-stdin" in cli.error(2, "user", "add", "cy", *db)  # no terminal


def test_an_unreachable_database_is_one_line_and_exit_5(tmp_path: Path) -> None:
    cli = Cli("http://127.0.0.1:9", tmp_path / "config")
    missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    add = ("user", "add", "ann", "--password-stdin", "--database-url", missing)
    said = cli.error(5, *add, stdin=PASSWORD)
    assert f"--database-url / JOBYARD_DATABASE_URL: cannot connect to {missing}: " in said


def test_a_user_command_on_the_default_database_says_which_it_is(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "JOBYARD_DATABASE_URL"}
    command = [sys.executable, "-m", "jobyard", "user", "add", "ann", "--password-stdin"]
    added = subprocess.run(
        command, cwd=tmp_path, env=environ, input=PASSWORD, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == "user ann added (viewer)\n"
    said = "on the default database sqlite:///./jobyard.db (--database-url for another)"
    assert added.stderr.splitlines() == [said]
    assert (tmp_path / "jobyard.db").exists()


def test_a_user_command_other_than_add_makes_no_database_where_there_is_none(
    tmp_path: Path,
) -> None:
    cli = Cli("http://127.0.0.1:9", tmp_path / "config")
    typo = tmp_path / "typo.db"
    for command in (("list",), ("remove", "ann"), ("set-role", "ann", "admin")):
        said = cli.error(5, "user", *command, "--database-url", f"sqlite:///{typo}")
        assert said.endswith(f"--database-url / JOBYARD_DATABASE_URL: no database at {typo} "
                             "(no such file)")  # fmt: skip
    assert list(tmp_path.glob("typo.db*")) == []


def test_a_password_set_on_the_database_works_on_the_running_server(
    cli: Cli, server: Server
) -> None:
    name = add_user(cli, server.database_url, "operator")
    assert cli.json("whoami", "--user", name, "--password", PASSWORD)["role"] == "operator"
    args = ("user", "set-password", name, "--password-stdin")
    cli.ok(*args, "--database-url", server.database_url, stdin="the-new-password\n")
    cli.error(6, "whoami", "--user", name, "--password", PASSWORD)
    assert cli.json("whoami", "--user", name, "--password", "the-new-password")["name"] == name


def test_passwd_changes_ones_own_password_read_from_stdin(cli: Cli, server: Server) -> None:
    name = add_user(cli, server.database_url, "viewer")
    cli.ok("login", "--user", name, "--password-stdin", stdin=PASSWORD + "\n")
    wrong = cli.error(7, "passwd", "--password-stdin", stdin="not-the-password\nnew-password\n")
    assert wrong.endswith(f"that is not the current password of {name!r}")
    short = cli.error(2, "passwd", "--password-stdin", stdin=f"{PASSWORD}\nshort\n")
    assert "new_password" in short
    nul = cli.error(2, "passwd", "--password-stdin", stdin=f"{PASSWORD}\nnul\x00pass-123\n")
    assert "new_password" in nul
    assert "contains a NUL character" in nul
    said = cli.ok("passwd", "--password-stdin", stdin=f"{PASSWORD}\nthe-new-password\n")
    assert said.strip() == f"password of {name} changed on {server.url}"
    assert cli.json("whoami")["via"] == "token"  # the saved login goes on
    cli.error(6, "whoami", "--user", name, "--password", PASSWORD)
    assert cli.json("whoami", "--user", name, "--password", "the-new-password")["name"] == name
    empty = cli.error(2, "passwd", "--password-stdin", stdin="")
    assert empty.endswith(f"no password on stdin (expected: current password of {name})")
    # The current one alone: it is the new one, on the second line, that is missing.
    one = cli.error(2, "passwd", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert one.endswith(f"no password on stdin (expected: new password of {name})")


def test_passwd_asks_both_passwords_hidden_on_a_terminal(cli: Cli, server: Server) -> None:
    name = add_user(cli, server.database_url, "operator")
    cli.ok("login", "--user", name, "--password-stdin", stdin=PASSWORD + "\n")
    new = "typed-new-password"
    code, shown = on_terminal(cli, "passwd", answers=[PASSWORD, new, new])
    assert code == 0, shown
    assert f"Current password of {name}:" in shown
    assert f"New password of {name}:" in shown
    assert "Repeat for confirmation:" in shown
    assert PASSWORD not in shown
    assert new not in shown
    assert _password_is(server.database_url, name, new)


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_every_client_command_takes_credentials(cli: Cli, command: str) -> None:
    text = cli.ok(*command.split(), "--help")
    for option in ("--token", "JOBYARD_TOKEN", "--user", "JOBYARD_USER", "--password"):
        assert option in text


def test_login_logout_and_user_commands_have_their_own_options(cli: Cli) -> None:
    login = cli.ok("login", "--help")
    assert "--password-stdin" in login
    assert "--token" not in login
    assert "--token" not in cli.ok("logout", "--help")
    add = cli.ok("user", "add", "--help")
    assert "--database-url" in add
    assert "--server" not in add


def _password_is(database_url: str, name: str, password: str) -> bool:
    store = Store(database_url)
    try:
        found = store.access.user(name)
    finally:
        store.close()
    assert found is not None
    return credentials.password_matches(found[1], password)


def _audit(database_url: str) -> list[Any]:
    from jobyard.access import AuditQuery
    from jobyard.access.audit import Audit

    store = Store(database_url)
    try:
        return Audit(store, utcnow).find(AuditQuery())[0]
    finally:
        store.close()
