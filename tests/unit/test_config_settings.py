from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jobyard.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.config is None
    assert settings.database_url == "sqlite:///./jobyard.db"
    assert settings.concurrency == 4
    assert settings.queues is None
    assert settings.python_pool is None  # one per concurrent job
    assert settings.kill_grace == 10.0
    assert settings.lease_timeout == 30.0
    assert settings.heartbeat_interval == 5.0
    assert settings.poll_interval == 0.5
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.log_level == "info"
    assert settings.log_format == "text"


def test_reads_prefixed_variables() -> None:
    settings = Settings.from_env(
        {
            "JOBYARD_PORT": "9000",
            "JOBYARD_CONFIG": "examples/jobyard.yaml",
            "JOBYARD_QUEUES": "default, export",
            "JOBYARD_KILL_GRACE": "1m",
            "JOBYARD_POLL_INTERVAL": "250ms",
            "JOBYARD_MAX_BODY_BYTES": "2MiB",
            "JOBYARD_LOG_LEVEL": "DEBUG",
            "JOBYARD_LOG_FORMAT": "JSON",
            "PORT": "1",
        }
    )
    assert settings.port == 9000
    assert settings.config == Path("examples/jobyard.yaml")
    assert settings.queues == ["default", "export"]
    assert settings.kill_grace == 60.0
    assert settings.poll_interval == 0.25
    assert settings.max_body_bytes == 2 * 1024 * 1024
    assert settings.log_level == "debug"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("raw", "queues"),
    [("default", ["default"]), ('["a", "b"]', ["a", "b"]), ("", None), ("*", None)],
)
def test_queue_lists(raw: str, queues: list[str] | None) -> None:
    assert Settings.from_env({"JOBYARD_QUEUES": raw}).queues == queues


def test_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBYARD_QUEUES", "default,export")
    monkeypatch.setenv("JOBYARD_CONCURRENCY", "8")
    settings = Settings()
    assert settings.queues == ["default", "export"]
    assert settings.concurrency == 8


def test_injected_environment_ignores_the_process_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBYARD_PORT", "1234")
    assert Settings.from_env({}).port == 8000
    assert Settings.from_env({"JOBYARD_PORT": "1"}, port=2).port == 2


def test_rejects_bad_values() -> None:
    with pytest.raises(ValidationError) as info:
        Settings.from_env(
            {
                "JOBYARD_CONCURRENCY": "0",
                "JOBYARD_LEASE_TIMEOUT": "soon",
                "JOBYARD_LOG_FORMAT": "xml",
            }
        )
    fields = {error["loc"][0] for error in info.value.errors()}
    assert fields == {"concurrency", "lease_timeout", "log_format"}


def test_worker_name_defaults_to_host_and_pid() -> None:
    assert Settings.from_env({"JOBYARD_WORKER_NAME": "w1"}).resolved_worker_name() == "w1"
    name = Settings.from_env({}).resolved_worker_name()
    assert name.rsplit("-", 1)[1].isdigit()


@pytest.mark.parametrize("name", ["team/a", "w y", "-w", "w" * 129, "wé"])
def test_a_worker_name_the_workers_api_cannot_address_is_refused(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings.from_env({"JOBYARD_WORKER_NAME": name})
    assert [error["loc"][0] for error in info.value.errors()] == ["worker_name"]


@pytest.mark.parametrize("name", ["w1", "build-7", "host.example.org-1234", "etl@2", "a:b+c_d"])
def test_worker_names_of_hosts_and_instances_are_taken(name: str) -> None:
    assert Settings.from_env({"JOBYARD_WORKER_NAME": name}).resolved_worker_name() == name
    assert Settings.from_env({"JOBYARD_WORKER_NAME": ""}).worker_name is None  # HOST-PID


def test_a_workers_queues_are_stripped_and_served_once_each() -> None:
    served = Settings.from_env({"JOBYARD_QUEUES": "default,,DEFAULT, default , export"})
    assert served.queues == ["default", "DEFAULT", "export"]  # queue names are case-sensitive
    assert Settings.from_env({"JOBYARD_QUEUES": "*"}).queues is None  # every queue
    assert Settings(queues=[" a", "a "]).queues == ["a"]


@pytest.mark.parametrize("queues", [",,", " , ", "[]", "bad/q", "default,bad/q", "q w", "-q"])
def test_queues_no_queue_can_have_or_none_at_all_are_refused(queues: str) -> None:
    """An empty list would mean every queue; a name with '/' can never be a queue."""
    with pytest.raises(ValidationError) as info:
        Settings.from_env({"JOBYARD_QUEUES": queues})
    assert [error["loc"][0] for error in info.value.errors()] == ["queues"]
