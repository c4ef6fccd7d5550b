"""Access settings of a whole server: the first admin, CORS, public metrics.

Each test starts private servers (``launch``) with its own configuration or
environment, on SQLite.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.harness import ADMIN, CONFIG, Launcher, Server
from tests.users import assert_problem, client

APP = "http://app.example"
MADE_UP = re.compile(r"created the user 'admin' with the password\s+(\S+)\s")


def console(server: Server) -> str:
    """What this server printed (the harness keeps one file per server)."""
    return (server.workdir / f"server-{server.port}.log").read_text(errors="replace")


def me(server: Server, auth: tuple[str, str]) -> httpx.Response:
    with client(server, auth) as http:
        return http.get("/api/v1/me")


def test_the_first_admin_gets_a_password_shown_once(launch: Launcher, sqlite_url: str) -> None:
    first = launch(sqlite_url, env={"JOBYARD_ADMIN_PASSWORD": None})
    printed = MADE_UP.findall(console(first))
    assert len(printed) == 1, console(first)
    made = ("admin", printed[0])
    assert len(made[1]) >= 16
    answer = me(first, made)
    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "admin"
    assert_problem(me(first, ADMIN), 401)  # the tests' usual password was not used
    first.stop()

    # Later starts print nothing and change nothing, with or without a password set.
    for env in ({"JOBYARD_ADMIN_PASSWORD": None}, {}):
        again = launch(sqlite_url, env=env)
        assert "created the user" not in console(again), console(again)
        assert me(again, made).status_code == 200
        assert_problem(me(again, ADMIN), 401)
        again.stop()


def test_a_given_admin_password_is_used_and_not_printed(launch: Launcher, sqlite_url: str) -> None:
    server = launch(sqlite_url, env={"JOBYARD_ADMIN_PASSWORD": "chosen-by-the-operator"})
    assert "chosen-by-the-operator" not in console(server)
    assert not MADE_UP.search(console(server))
    assert me(server, ("admin", "chosen-by-the-operator")).status_code == 200


def open_config(tmp_path: Path) -> Path:
    path = tmp_path / "jobyard.yaml"
    extra = f"\nmetrics_public: true\ncors_origins: [{APP}]\n"
    path.write_text(CONFIG.read_text() + extra)
    return path


def preflight(server: Server, origin: str) -> httpx.Response:
    with client(server) as anonymous:
        return anonymous.options(
            "/api/v1/jobs",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-csrf-token",
            },
        )


def test_cors_allows_the_configured_origin_only(
    launch: Launcher, sqlite_url: str, tmp_path: Path
) -> None:
    server = launch(sqlite_url, config=open_config(tmp_path))
    allowed = preflight(server, APP)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-csrf-token" in allowed.headers["access-control-allow-headers"].lower()
    other = preflight(server, "http://evil.example")
    assert "access-control-allow-origin" not in other.headers
    with client(server, ADMIN) as http:
        answer = http.get("/api/v1/jobs", headers={"Origin": APP})
        stranger = http.get("/api/v1/jobs", headers={"Origin": "http://evil.example"})
        held = {"type": "echo", "args": {"text": "x"}, "hold": True}
        posted = http.post("/api/v1/jobs", json=held, headers={"Origin": APP})
        forged = http.post("/api/v1/jobs", json=held, headers={"Origin": "http://evil.example"})
    assert answer.headers["access-control-allow-origin"] == APP
    assert "access-control-allow-origin" not in stranger.headers
    assert posted.status_code == 201, posted.text  # a page of the allowed site may change things
    assert_problem(forged, 403)
    # CORS lets a page read answers; it does not let anyone in.
    with client(server) as anonymous:
        assert_problem(anonymous.get("/api/v1/jobs", headers={"Origin": APP}), 401)


def test_metrics_are_public_only_when_configured(
    launch: Launcher, sqlite_url: str, tmp_path: Path
) -> None:
    guarded = launch(sqlite_url)
    with client(guarded) as anonymous:
        assert_problem(anonymous.get("/metrics"), 401)
    guarded.stop()
    public = launch(sqlite_url, config=open_config(tmp_path))
    with client(public) as anonymous:
        response = anonymous.get("/metrics")
        assert response.status_code == 200
        assert "jobyard_" in response.text
        assert_problem(anonymous.get("/api/v1/jobs"), 401)  # nothing else opens with it
