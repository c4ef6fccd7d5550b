"""How the client proves who it is: an API token, or a user name and password.

The token ``jobyard login`` saves is kept with the server it was made on, and
used for that server only: sent to another, it would give that server the
power to act as the user on the first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

LOGIN_FILE = "login.json"
OLD_TOKEN_FILE = "token"  # a bare secret, for whichever server: left unread


class BearerToken(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def credentials(
    token: str | None = None,
    auth: tuple[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    server: str = "",
) -> httpx.Auth | None:
    """The first of: ``token``, ``auth``, ``JOBYARD_TOKEN``, ``JOBYARD_USER`` with
    ``JOBYARD_PASSWORD``, the token ``jobyard login`` saved for ``server``; None without any."""
    env = os.environ if environ is None else environ
    if token is not None and not isinstance(token, str):
        raise TypeError(
            f"token must be the secret (a str, 'jy_…'), not {type(token).__name__}: "
            "pass create_token(...).secret"
        )
    if token:
        return BearerToken(token)
    if auth is not None:
        return httpx.BasicAuth(*auth)
    if env.get("JOBYARD_TOKEN"):
        return BearerToken(env["JOBYARD_TOKEN"])
    if env.get("JOBYARD_USER"):
        return httpx.BasicAuth(env["JOBYARD_USER"], env.get("JOBYARD_PASSWORD", ""))
    saved = saved_token(server, env)
    return BearerToken(saved) if saved else None


@dataclass(frozen=True)
class SavedLogin:
    """What ``jobyard login`` saved: a token, and the server (normalised) it is for."""

    server: str
    token: str


def normalise(server: str) -> str:
    """``server`` as one spelling: lower-case scheme and host, no default port, no final ``/``.

    ``localhost:8000``, ``HTTP://LocalHost:8000/`` and ``http://localhost:8000`` are one.
    """
    url = httpx.URL(server if "://" in server else f"http://{server}")
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""  # None: the scheme's default
    return f"{url.scheme}://{host}{port}{url.path.rstrip('/')}"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``jobyard login`` keeps its token: ``$XDG_CONFIG_HOME/jobyard`` (``~/.config``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "jobyard"


def login_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file of the login saved by ``jobyard login`` (JSON: ``server`` and ``token``)."""
    return config_dir(environ) / LOGIN_FILE


def old_token_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``jobyard login`` saved a bare token before, for any server: no longer read."""
    return config_dir(environ) / OLD_TOKEN_FILE


def saved_login(environ: Mapping[str, str] | None = None) -> SavedLogin | None:
    """The saved login, if there is a readable one."""
    try:
        data = json.loads(login_path(environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    server, token = data.get("server"), data.get("token")
    if not (isinstance(server, str) and isinstance(token, str) and server and token):
        return None
    return SavedLogin(normalise(server), token)


def saved_token(server: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The saved token if it is for ``server``; None for any other (it is never sent there)."""
    login = saved_login(environ)
    return login.token if login is not None and login.server == normalise(server) else None


def login_note(server: str, environ: Mapping[str, str] | None = None) -> str:
    """Why no saved token is used for ``server`` (empty when one is, or none was saved)."""
    login = saved_login(environ)
    if login is not None:
        return "" if login.server == normalise(server) else f"the saved login is for {login.server}"
    if old_token_path(environ).exists():
        return f"the token in {old_token_path(environ)} (an older jobyard login) is not used"
    return ""


def save_login(server: str, token: str, environ: Mapping[str, str] | None = None) -> Path:
    """Save the token for ``server``, readable by its owner only (0600 in a 0700 folder).

    It replaces any saved login, and the bare token an older ``jobyard login`` left.
    """
    path = login_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)  # the folder may have been made before, more open
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"server": normalise(server), "token": token}, f)
        f.write("\n")
    path.chmod(0o600)  # an older file may have been made with other bits
    old_token_path(environ).unlink(missing_ok=True)
    return path
