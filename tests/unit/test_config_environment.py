"""``pass_env``, ``api_job_types`` and a type's ``user`` in jobyard.yaml, and in the catalogue."""

from __future__ import annotations

import os
import pwd
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobyard.config import empty_config, load_config
from jobyard.errors import Forbidden, Invalid
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import JobTypeInvalid, parse_job_type
from jobyard.store.memory import MemoryStore
from tests.unit.test_config import errors, write

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ME = pwd.getpwuid(os.geteuid()).pw_name


def test_defaults() -> None:
    config = empty_config()
    assert (config.pass_env, config.api_job_types) == ((), True)


def test_pass_env_and_api_job_types_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pass_env: [PYTHONPATH, AWS_*, _X1]
        api_job_types: false
        """,
    )
    config = load_config(path)
    assert config.pass_env == ("PYTHONPATH", "AWS_*", "_X1")
    assert config.api_job_types is False


def test_bad_pass_env_entries_are_named_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pass_env:
          - GOOD
          - "*"
          - 9LIVES
          - {A: b}
        """,
    )
    hint = "is not a variable name (like MY_VAR, or AWS_* for a prefix)"
    assert errors(path) == [
        f"{path}:3: pass_env.1: '*' {hint}",
        f"{path}:4: pass_env.2: '9LIVES' {hint}",
        f"{path}:5: pass_env.3: {{'A': 'b'}} {hint}",
    ]


def test_pass_env_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types: {}\npass_env: PATH\n")
    assert errors(path) == [f"{path}:2: pass_env: must be a list of variable names, not a string"]


def test_api_job_types_must_be_a_boolean(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types: {}\napi_job_types: sometimes\n")
    assert errors(path) == [f"{path}:2: api_job_types: must be true or false, not a string"]


def test_a_types_user_must_exist(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        job_types:
          mine:
            command: [id, -u]
            user: {ME}
          ghost:
            command: [id, -u]
            user: no-such-user-here
          odd:
            python: jobs:odd
            user: "bad name"
        """,
    )
    assert errors(path) == [
        f"{path}:7: job_types.ghost.user: no user 'no-such-user-here' on this host",
        f"{path}:10: job_types.odd.user: not a user name "
        "(letters, digits, '_', '.', '-'; at most 32)",
    ]


def test_a_types_user_reaches_its_jobs(tmp_path: Path) -> None:
    path = write(tmp_path, f"job_types:\n  mine: {{command: [id, -u], user: {ME}}}\n")
    mine = load_config(path).job_types["mine"]
    assert mine.resolve(mine.validate_args({})).user == ME
    assert mine.public_dict()["user"] == ME
    plain = parse_job_type("plain", {"python": "jobs:run"})
    assert plain.resolve({}).user is None


def test_a_user_name_is_checked_by_the_model() -> None:
    with pytest.raises(JobTypeInvalid) as info:
        parse_job_type("x", {"command": ["true"], "user": "a:b"})
    assert [e["field"] for e in info.value.errors] == ["user"]


def test_api_writes_can_be_turned_off() -> None:
    store = MemoryStore()
    open_catalog = Catalog(store, {})
    open_catalog.put("stored", {"command": ["true"]}, NOW)
    closed = Catalog(store, {}, writable=False)
    for write_type in (
        lambda: closed.put("new", {"command": ["true"]}, NOW),
        lambda: closed.put("stored", {"command": ["false"]}, NOW),
        lambda: closed.delete("stored"),
    ):
        with pytest.raises(Forbidden, match="configured with api_job_types: false"):
            write_type()
    stored = closed.require("stored")  # still there, unchanged, and usable
    assert stored.resolve({}).argv == ["true"]


def test_the_api_refuses_a_user_missing_here() -> None:
    catalog = Catalog(MemoryStore(), {})
    with pytest.raises(Invalid) as info:
        catalog.put("ghost", {"command": ["true"], "user": "no-such-user-here"}, NOW)
    assert info.value.errors == [
        {"field": "user", "message": "no user 'no-such-user-here' on this host"}
    ]
    assert catalog.get("ghost") is None


def test_the_api_refuses_a_queue_the_file_does_not_declare(tmp_path: Path) -> None:
    path = write(tmp_path, "queues:\n  fast: {}\n")
    config = load_config(path)
    assert config.declared_queues == {"default", "fast"}
    catalog = Catalog(MemoryStore(), {}, queues=config.declared_queues)
    with pytest.raises(Invalid) as info:
        catalog.put("typo", {"command": ["true"], "queue": "fsat"}, NOW)
    assert info.value.errors == [
        {
            "field": "queue",
            "message": "queue 'fsat' is not declared under queues; did you mean 'fast'?",
        }
    ]
    assert catalog.get("typo") is None
    catalog.put("fine", {"command": ["true"], "queue": "fast"}, NOW)
    assert catalog.require("fine").queue == "fast"
    # A file without a queues section declares none: any queue goes, as in the file.
    assert load_config(write(tmp_path, "job_types: {}\n")).declared_queues is None
    Catalog(MemoryStore(), {}).put("anywhere", {"command": ["true"], "queue": "fsat"}, NOW)
