"""The example configuration loads, and its Python jobs follow the job contract."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jobyard.config import load_config
from jobyard.jobtypes.argv import ArgTemplate, Placeholder
from jobyard.jobtypes.params import ArgsInvalid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_config_loads() -> None:
    config = load_config(EXAMPLES / "jobyard.yaml")
    assert config.base_dir == EXAMPLES
    assert {"hello", "export", "sleep", "fail", "slow-with-timeout", "count", "resize"} <= set(
        config.job_types
    )
    kinds = {job_type.kind for job_type in config.job_types.values()}
    assert kinds == {"command", "python"}
    assert any(job_type.shell for job_type in config.job_types.values())
    assert any(job_type.restart.value == "on-failure" for job_type in config.job_types.values())
    assert config.queues["export"].max_running == 2


def test_example_types_resolve() -> None:
    types = load_config(EXAMPLES / "jobyard.yaml").job_types
    hello = types["hello"]
    assert hello.resolve(hello.validate_args({})).argv == ["echo", "Hello, world!"]
    export = types["export"]
    spec = export.resolve(
        export.validate_args({"from_date": "2026-01-01", "to_date": "2026-01-02"})
    )
    assert spec.argv is not None
    assert spec.argv[:2] == ["python3", "export_rows.py"]
    assert "--limit" in spec.argv
    assert "1000" in spec.argv
    assert spec.cwd == str(EXAMPLES)
    assert (EXAMPLES / "export_rows.py").is_file()
    fail = types["fail"]
    assert fail.resolve(fail.validate_args({})).retries.max == 2
    assert types["slow-with-timeout"].timeout == 5.0
    for job_type in types.values():
        if not job_type.json_schema()["required"]:
            job_type.resolve(job_type.validate_args({}))


class FakeContext:
    def __init__(self, job_id: int = 1, stop_after: int | None = None) -> None:
        self.job_id = job_id
        self.events: list[tuple[str, Any]] = []
        self.stop_after = stop_after

    @property
    def stopping(self) -> bool:
        progress = [e for e in self.events if e[0] == "progress"]
        return self.stop_after is not None and len(progress) >= self.stop_after

    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        self.events.append(("progress", fraction))

    def metric(self, name: str, value: float) -> None:
        self.events.append(("metric", (name, value)))

    def log(self, message: str, *args: object) -> None:
        self.events.append(("log", message % args))


@pytest.fixture(scope="module")
def example_jobs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_jobs", EXAMPLES / "example_jobs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_function(example_jobs: ModuleType) -> None:
    ctx = FakeContext()
    assert example_jobs.count(ctx, n=4, delay=0) == {"counted": 4}
    assert [e[1] for e in ctx.events if e[0] == "progress"] == [0.25, 0.5, 0.75, 1.0]
    assert ("metric", ("count", 4)) in ctx.events
    stopped = FakeContext(stop_after=2)
    assert example_jobs.count(stopped, n=10, delay=0) == {"counted": 2}


def test_resize_class_hooks(example_jobs: ModuleType) -> None:
    ctx = FakeContext(job_id=-os.getpid())
    job = example_jobs.Resize()
    workdir = example_jobs.scratch_dir(ctx)
    try:
        assert job.start(ctx, images=3, width=100, delay=0) == {"images": 3}
        assert len(list(workdir.iterdir())) == 3
        assert job.details() == {"resized": 3, "of": 3, "width": 100}
        job.pause(ctx)
        job.resume(ctx)
        stopped = example_jobs.Resize()
        stopped.stop(ctx)
        assert stopped.start(ctx, images=3, delay=0) == {"images": 0}
    finally:
        example_jobs.Resize().clean(ctx, images=3)
    assert not workdir.exists()


def test_a_value_alone_in_its_element_cannot_become_an_option() -> None:
    """Every ``"{name}"`` of the examples comes after ``--`` or has a param that refuses
    a leading ``-`` (docs/job-types.md#option-injection)."""
    checked = 0
    for job_type in load_config(EXAMPLES / "jobyard.yaml").job_types.values():
        if not isinstance(job_type.command, list):
            continue
        for index, element in enumerate(job_type.command):
            segments = ArgTemplate.parse(element).segments
            if len(segments) != 1 or not isinstance(segments[0], Placeholder):
                continue  # fixed text first: the value cannot start an option
            if "--" in job_type.command[:index]:
                continue
            name = segments[0].name
            kind = job_type.json_schema()["properties"][name].get("type")
            evil: object = -1 if kind in ("integer", "number") else "--help"
            with pytest.raises(ArgsInvalid) as info:
                job_type.validate_args({name: evil})
            assert name in [e["field"] for e in info.value.errors], job_type.name
            checked += 1
    assert checked >= 5


def test_count_lines_keeps_its_file_an_operand() -> None:
    count_lines = load_config(EXAMPLES / "jobyard.yaml").job_types["count-lines"]
    spec = count_lines.resolve(count_lines.validate_args({"file": "export_rows.py"}))
    assert spec.argv == ["wc", "-l", "--", "export_rows.py"]
    assert spec.cwd == str(EXAMPLES)
    for evil in ("--files0-from=/etc/shadow", "-c", "../jobyard.yaml", "a/b"):
        with pytest.raises(ArgsInvalid):
            count_lines.validate_args({"file": evil})
