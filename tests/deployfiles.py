"""The process command lines the shipped deployment files run, read from those files.

The Dockerfile (its ``ENV``, ``ENTRYPOINT``, ``CMD`` and ``HEALTHCHECK``), the
compose file (each service's ``command:`` and ``environment:``, interpolated as
Compose does) and the systemd units (``ExecStart=``, ``Environment=``,
``EnvironmentFile=``, specifiers) each become a :class:`Launch`: the argv and the
environment a container or a unit would start with. :func:`localize` then points
them at this machine (a test database, free ports, the files their volumes mount)
so that the tests run exactly those command lines.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SYSTEMD = ROOT / "deploy" / "systemd"
GRAFANA = ROOT / "deploy" / "grafana" / "jobyard.json"
JOBYARD = str(Path(sys.executable).parent / "jobyard")  # the installed entry point


@dataclass(frozen=True)
class Launch:
    """One process as the deployment starts it: argv, environment, files it sees."""

    name: str
    argv: list[str]
    env: dict[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)  # path it sees → path here


# -- Dockerfile ------------------------------------------------------------------
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the final stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found: list[tuple[str, str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            found = []  # a new stage: only the last one runs
        found.append((keyword.upper(), rest.strip()))
    return found


@dataclass(frozen=True)
class Image:
    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: list[str]
    workdir: str


def read_image(path: Path = DOCKERFILE) -> Image:
    env: dict[str, str] = {}
    exec_forms: dict[str, list[str]] = {}
    workdir = "/"
    for keyword, rest in dockerfile_instructions(path.read_text()):
        if keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(rest))
        elif keyword in ("ENTRYPOINT", "CMD"):
            exec_forms[keyword] = json.loads(rest)  # the exec form: a JSON array
        elif keyword == "HEALTHCHECK":
            exec_forms[keyword] = json.loads(rest[rest.index("CMD ") + 4 :])
        elif keyword == "WORKDIR":
            workdir = rest
    return Image(
        env, exec_forms["ENTRYPOINT"], exec_forms["CMD"], exec_forms["HEALTHCHECK"], workdir
    )


def image_default(image: Image) -> Launch:
    """``docker run jobyard``: the entrypoint with the default command."""
    return Launch("image", [*image.entrypoint, *image.cmd], dict(image.env))


# -- docker-compose.yml -------------------------------------------------------------
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        found = environ.get(name)
        if op in (":-", "-") and not found:
            return arg
        if op in (":?", "?") and not found:
            raise KeyError(f"{name}: {arg}")
        return found or ""

    return _VARIABLE.sub(one, value)


def read_compose(path: Path = COMPOSE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def compose_services(
    image: Image, environ: Mapping[str, str], path: Path = COMPOSE
) -> dict[str, Launch]:
    """Every service built from the image, as ``docker compose up`` starts it."""
    found: dict[str, Launch] = {}
    for name, service in read_compose(path)["services"].items():
        if "build" not in service:
            continue  # not our image (the database)
        env = dict(image.env)
        for key, value in service.get("environment", {}).items():
            env[key] = interpolate(str(value), environ)
        argv = [*image.entrypoint, *service.get("command", image.cmd)]
        mounts = {}
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            mounts[target] = (path.parent / source).resolve()
        found[name] = Launch(name, argv, env, mounts)
    return found


# -- systemd -------------------------------------------------------------------------
def read_unit(path: Path) -> dict[str, list[str]]:
    """The ``[Service]`` settings of a unit, each with all its values in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def read_env_file(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def unit_launch(
    path: Path, env_files: Mapping[str, Path], *, instance: str = "", host: str = "host"
) -> Launch:
    """The process a unit starts, with its specifiers (``%i``, ``%H``) expanded."""
    settings = read_unit(path)

    def expand(value: str) -> str:
        return value.replace("%i", instance).replace("%H", host).replace("%%", "%")

    env: dict[str, str] = {}
    for name in settings.get("EnvironmentFile", []):
        env |= read_env_file(env_files[name.removeprefix("-")])
    for assignments in settings.get("Environment", []):
        env |= dict(pair.split("=", 1) for pair in shlex.split(expand(assignments)))
    (exec_start,) = settings["ExecStart"]
    return Launch(f"{path.stem}{instance}", shlex.split(expand(exec_start)), env)


# -- pointing a launch at this machine ------------------------------------------------
def localize(launch: Launch, *, database_url: str, port: int) -> Launch:
    """The same command line on this machine: our ``jobyard``, a test database, a free port.

    Only the addresses change: the database's host and name, the API's address and
    port, and container paths to the files their volumes mount here.
    """
    argv = [JOBYARD if Path(launch.argv[0]).name == "jobyard" else launch.argv[0]]
    env = dict(launch.env)
    env["JOBYARD_DATABASE_URL"] = _database(env.get("JOBYARD_DATABASE_URL"), database_url)
    env["JOBYARD_HOST"], env["JOBYARD_PORT"] = "127.0.0.1", str(port)
    if "JOBYARD_CONFIG" in env:
        env["JOBYARD_CONFIG"] = str(_mounted(env["JOBYARD_CONFIG"], launch.mounts))
    return replace(launch, argv=argv + launch.argv[1:], env=env, mounts={})


def _database(theirs: str | None, ours: str) -> str:
    """Ours, once theirs is checked to be a database of the same kind (or SQLite's default)."""
    if theirs is None:
        return ours
    if make_url(theirs).get_backend_name() != make_url(ours).get_backend_name():
        raise AssertionError(f"{theirs} is not a database of the kind of {ours}")
    return ours


def _mounted(path: str, mounts: Mapping[str, Path]) -> Path:
    for target, source in mounts.items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            found = source / path[len(target) :].lstrip("/")
            if not found.exists():
                raise AssertionError(f"{path} is mounted from {found}, which does not exist")
            return found
    raise AssertionError(f"{path} is no file the deployment mounts ({sorted(mounts)})")
