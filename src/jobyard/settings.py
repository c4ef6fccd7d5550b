"""Process settings, read from ``JOBYARD_*`` environment variables.

These say how this process runs (where to listen, which database, how many jobs
at once); what jobs exist is the job configuration file (:mod:`jobyard.config`).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from jobyard.durations import Duration, Size
from jobyard.jobtypes.spec import NAME_RE
from jobyard.routing import check_tags

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["text", "json"]
WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
ENV_PREFIX = "JOBYARD_"
#: The fewest heartbeats a lease lasts: shorter, one missed heartbeat loses every job.
MIN_HEARTBEATS_PER_LEASE = 2
#: Seconds between two checks of an open event stream's credentials (api/recheck.py).
STREAM_RECHECK = 5.0
#: The database kinds of a URL jobyard can store in (MariaDB through its MySQL dialect).
DATABASES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
_URL_EXAMPLES = "sqlite:///./jobyard.db, postgresql://user@host/db or mysql://user@host/db"
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("jobyard_environ", default=None)


def _split_list(value: Any) -> Any:
    """Accept ``default,export`` (and a JSON list) from the environment."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    if text in ("", "*"):
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


class Settings(BaseSettings):
    """Settings of one jobyard process (server, worker or both).

    Every field reads ``JOBYARD_<FIELD>`` from the environment, e.g.
    ``JOBYARD_QUEUES=default,export`` or ``JOBYARD_KILL_GRACE=30s``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    config: Path | None = None
    database_url: str = "sqlite:///./jobyard.db"
    worker_name: str | None = None
    concurrency: int = Field(default=4, ge=1)
    queues: Annotated[list[str] | None, NoDecode, BeforeValidator(_split_list)] = None
    # The worker runs the jobs whose required tags are all among these (routing.py).
    tags: Annotated[list[str] | None, NoDecode, BeforeValidator(_split_list)] = None
    # On SIGTERM or a drain request: how long running jobs may go on before they are handed back.
    drain_timeout: Annotated[Duration, Field(ge=0)] = 5.0
    python_pool: int | None = Field(default=None, ge=0)  # None: one per concurrent job
    kill_grace: Annotated[Duration, Field(ge=0)] = 10.0
    lease_timeout: Annotated[Duration, Field(gt=0)] = 30.0
    heartbeat_interval: Annotated[Duration, Field(gt=0)] = 5.0
    poll_interval: Annotated[Duration, Field(gt=0)] = 0.5
    max_body_bytes: Annotated[Size, Field(ge=1)] = 2**20
    # A request's body must have arrived whole this long after it began, or the answer is
    # 408: a client dripping its body would hold a request's place as long as it liked.
    body_timeout: Annotated[Duration, Field(gt=0)] = 30.0
    # Load shedding (api/shedding.py): past these, 503 with Retry-After at once. Requests
    # being handled at a time (streams and /healthz apart); sized for 2 cores.
    max_requests: int = Field(default=256, ge=1)
    max_streams: int = Field(default=500, ge=1)  # open event streams (SSE), one fd each
    # An open stream checks its caller's credentials again this often, and ends once they
    # no longer allow it (a revoked token, a removed user, a logout, a lowered role).
    stream_recheck: Annotated[Duration, Field(gt=0)] = STREAM_RECHECK
    log_cap: Annotated[Size, Field(ge=1024)] = 50_000_000
    # How often the scheduler leader applies the configuration's ``retention`` (docs/retention.md).
    retention_interval: Annotated[Duration, Field(gt=0)] = 300.0
    log_level: LogLevel = "info"
    log_format: LogFormat = "text"
    # The first start on a database without users creates ``admin`` with this password
    # (or a random one, printed once); later starts ignore it. Empty means unset.
    admin_password: SecretStr | None = None

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("worker_name")
    @classmethod
    def _addressable_name(cls, value: str | None) -> str | None:
        # The workers API addresses a worker by its name in the path.
        if not value:
            return None  # unset (an empty variable too): HOST-PID
        if not WORKER_NAME.fullmatch(value):
            raise ValueError(
                "use 1-128 letters, digits, '.', '_', '-', ':', '@' or '+', starting with a "
                "letter or digit (the workers API has it in its paths)"
            )
        return value

    @field_validator("admin_password", mode="before")
    @classmethod
    def _admin_password(cls, value: Any) -> Any:
        if value == "":
            return None
        # As long as every password must be (jobyard.access.accounts.MIN_PASSWORD).
        if isinstance(value, str) and len(value) < 8:
            raise ValueError("at least 8 characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        from jobyard.store.engine import sqlite_synchronous

        try:
            url = make_url(value)
        except (ArgumentError, ValueError):  # its message may show the password
            raise ValueError(f"not a database URL (e.g. {_URL_EXAMPLES})") from None
        backend = url.get_backend_name()
        if backend not in DATABASES:
            raise ValueError(f"unknown database {backend!r}: use {_URL_EXAMPLES}")
        if backend == "sqlite":
            sqlite_synchronous(url)
        return value

    @field_validator("queues")
    @classmethod
    def _valid_queues(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_queues(value)

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(check_tags(value))

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Self:
        """Build settings from ``environ`` instead of the process environment.

        Keyword ``overrides`` (e.g. from command-line options) win over both.
        """
        token = _ENVIRON.set(environ)
        try:
            return cls(**overrides)
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        return init_settings, _MappingEnvSource(settings_cls, environ)

    def lease_problem(self) -> str | None:
        """What is wrong with the lease timeout, given the heartbeat interval (None: fine).

        A worker renews its leases at each heartbeat: a lease no longer than one lapses
        before the next, and every job that runs longer than the lease is lost
        (``worker_lost``); one shorter than two lapses whenever a heartbeat is missed.
        Checked by the processes that lease (``serve`` and ``worker``), not by the
        commands that only work on the database.
        """
        if self.lease_timeout >= MIN_HEARTBEATS_PER_LEASE * self.heartbeat_interval:
            return None
        return (
            f"{ENV_PREFIX}LEASE_TIMEOUT ({self.lease_timeout:g} s) must be at least "
            f"{MIN_HEARTBEATS_PER_LEASE} times {ENV_PREFIX}HEARTBEAT_INTERVAL "
            f"({self.heartbeat_interval:g} s), and is best 3-6 times it"
        )

    def resolved_worker_name(self) -> str:
        """``worker_name``, or ``<host>-<pid>`` when it is not set."""
        return self.worker_name or default_worker_name()


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._environ)
        return {key.lower(): value for key, value in self._environ.items()}


def check_queues(names: list[str]) -> list[str]:
    """The queues a worker serves, stripped, each once (in the order given); a name no
    queue can have, or no name at all, is refused (ValueError)."""
    served = list(dict.fromkeys(name.strip() for name in names))  # names are case-sensitive
    bad = [name for name in served if not NAME_RE.fullmatch(name)]
    if bad or not served:
        what = f"no queue can be named {bad[0]!r}" if bad else "no queue given"
        raise ValueError(
            f"{what}: give queue names (1-100 letters, digits, '_', '.' or '-', starting "
            "with a letter or digit) separated by commas, or none for every queue"
        )
    return served


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"
