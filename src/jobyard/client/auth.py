"""How the client proves who it is: an API token, or a user name and password.

The token ``jobyard login`` saves is kept with the server it was made on, and
used for that server only: sent to another, it would give that server the
power to act as the user on the first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

from jobyard.client.values import server_url

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


def normalise(server: str) -> str:
    """``server`` as one spelling: lower-case scheme and host, no default port, no final ``/``.

    ``localhost:8000``, ``HTTP://LocalHost:8000/`` and ``http://localhost:8000`` are one.
    """
    url = httpx.URL(server_url(server))
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""  # None: the scheme's default
    return f"{url.scheme}://{host}{port}{url.path.rstrip('/')}"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``jobyard login`` keeps its token: ``$XDG_CONFIG_HOME/jobyard`` (``~/.config``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "jobyard"


def login_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file of the logins saved by ``jobyard login`` (JSON: ``{"logins": {server: token}}``)."""
    return config_dir(environ) / LOGIN_FILE


def old_token_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``jobyard login`` saved a bare token before, for any server: no longer read."""
    return config_dir(environ) / OLD_TOKEN_FILE


def saved_logins(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The saved tokens by server (normalised); empty without a readable file."""
    try:
        data = json.loads(login_path(environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    logins = data.get("logins")
    if not isinstance(logins, dict):  # one login, as the first version of this file had it
        logins = {data.get("server"): data.get("token")}
    return {
        normalise(server): token
        for server, token in logins.items()
        if isinstance(server, str) and server and isinstance(token, str) and token
    }


def saved_token(server: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The token saved for ``server``; None for any other server (it is never sent there)."""
    return saved_logins(environ).get(normalise(server))


def login_note(server: str, environ: Mapping[str, str] | None = None) -> str:
    """Why no saved token is used for ``server`` (empty when one is, or none was saved)."""
    logins = saved_logins(environ)
    if logins:
        if normalise(server) in logins:
            return ""
        return f"the saved login{'s are' if len(logins) > 1 else ' is'} for {', '.join(logins)}"
    if old_token_path(environ).exists():
        return f"the token in {old_token_path(environ)} (an older jobyard login) is not used"
    return ""


def save_login(server: str, token: str, environ: Mapping[str, str] | None = None) -> Path:
    """Save the token for ``server`` beside those of other servers, readable by its owner
    only (0600 in a 0700 folder); it replaces that server's, and the bare token an older
    ``jobyard login`` left."""
    logins = saved_logins(environ) | {normalise(server): token}
    path = _write(logins, environ)
    old_token_path(environ).unlink(missing_ok=True)
    return path


def forget_login(server: str, environ: Mapping[str, str] | None = None) -> Path:
    """Remove the token saved for ``server`` (the file with the last one)."""
    logins = saved_logins(environ)
    logins.pop(normalise(server), None)
    if logins:
        return _write(logins, environ)
    path = login_path(environ)
    path.unlink(missing_ok=True)
    return path


def _write(logins: Mapping[str, str], environ: Mapping[str, str] | None) -> Path:
    path = login_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)  # the folder may have been made before, more open
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"logins": dict(logins)}, f, indent=1)
        f.write("\n")
    path.chmod(0o600)  # an older file may have been made with other bits
    return path
