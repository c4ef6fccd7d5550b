"""How the client proves who it is: an API token, or a user name and password."""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

TOKEN_FILE = "token"


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
) -> httpx.Auth | None:
    """The first of: ``token``, ``auth``, ``JOBYARD_TOKEN``, ``JOBYARD_USER`` with
    ``JOBYARD_PASSWORD``, the token saved by ``jobyard login``; None without any."""
    env = os.environ if environ is None else environ
    if token:
        return BearerToken(token)
    if auth is not None:
        return httpx.BasicAuth(*auth)
    if env.get("JOBYARD_TOKEN"):
        return BearerToken(env["JOBYARD_TOKEN"])
    if env.get("JOBYARD_USER"):
        return httpx.BasicAuth(env["JOBYARD_USER"], env.get("JOBYARD_PASSWORD", ""))
    saved = saved_token(env)
    return BearerToken(saved) if saved else None


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``jobyard login`` keeps its token: ``$XDG_CONFIG_HOME/jobyard`` (``~/.config``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "jobyard"


def token_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file of the token saved by ``jobyard login``."""
    return config_dir(environ) / TOKEN_FILE


def saved_token(environ: Mapping[str, str] | None = None) -> str | None:
    path = token_path(environ)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def save_token(token: str, environ: Mapping[str, str] | None = None) -> Path:
    """Write the token readable by its owner only (mode 0600, created so; its folder 0700)."""
    path = token_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)  # the folder may have been made before, more open
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    path.chmod(0o600)  # an older file may have been made with other bits
    return path
