"""Workflows in jobyard.yaml: parsed onto ``Config.workflows``, problems with their lines."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path

import pytest

from jobyard.config import ConfigError, load_config

TYPES = """
job_types:
  export:
    command: [export, "{day}"]
    params: {day: {type: string, format: date, required: true}}
  resize:
    python: myapp.jobs:resize
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobyard.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).splitlines()


def test_workflows_are_parsed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TYPES
        + """
workflows:
  nightly:
    description: Load and report
    timezone: Europe/Berlin
    args: {day: 2026-01-01}  # YAML reads a date: it is passed on as "2026-01-01"
    nodes:
      extract:   {type: export}
      transform: {type: resize, depends_on: [extract]}
      report:    {type: export, depends_on: [transform], at: "06:00"}
""",
    )
    nightly = load_config(path).workflows["nightly"]
    assert (nightly.description, nightly.timezone) == ("Load and report", "Europe/Berlin")
    assert list(nightly.nodes) == ["extract", "transform", "report"]
    assert nightly.nodes["report"].at == time(6, 0)
    assert nightly.args == {"day": "2026-01-01"}


BAD = (
    TYPES
    + """
queues:
  default: {}
  exports: {}
workflows:
  nightly:
    timezone: Europe/Berln
    nodes:
      extract:
        type: exprot
      transform:
        type: resize
        depends_on: [extrct]
      report:
        type: export
        args: {day: tomorrow}
        at: 6:30
        queue: export
  loop:
    nodes:
      a: {type: resize, depends_on: [c]}
      b: {type: resize, depends_on: [a]}
      c: {type: resize, depends_on: [b]}
      x.y: {type: resize, colour: red}
"""
)


def test_bad_workflows_give_file_line_field_message(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    assert errors(path) == [
        f"{path}:13: workflows.nightly.timezone: unknown time zone 'Europe/Berln'; "
        "did you mean 'Europe/Berlin'? (use an IANA name like Europe/Berlin or UTC)",
        f"{path}:16: workflows.nightly.nodes.extract.type: unknown job type 'exprot'; "
        "did you mean 'export'?",
        f"{path}:19: workflows.nightly.nodes.transform.depends_on: unknown node 'extrct'; "
        "did you mean 'extract'?",
        f'{path}:22: workflows.nightly.nodes.report.args.day: "tomorrow" is not a "date"',
        f'{path}:23: workflows.nightly.nodes.report.at: quote the time, e.g. at: "06:00" '
        "(unquoted, YAML reads it as a number)",
        f"{path}:24: workflows.nightly.nodes.report.queue: queue 'export' is not declared "
        "under queues; did you mean 'exports'?",
        f"{path}:27: workflows.loop.nodes.a.depends_on: cycle: a → b → c → a",
        f"{path}:30: workflows.loop.nodes.x.y: invalid node name: use 1-100 letters, digits, "
        "'_' or '-', starting with a letter or digit",
        f"{path}:30: workflows.loop.nodes.x.y.colour: unknown key (allowed: type, args, "
        "depends_on, at, cron, queue, priority, timeout, retries, sla)",
    ]


def test_a_broken_job_type_is_not_also_an_unknown_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        job_types:
          broken: {comand: [x]}
        workflows:
          w:
            nodes:
              a: {type: broken}
        """,
    )
    assert all("workflows" not in line for line in errors(path))


def test_without_workflows_the_mapping_is_empty(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, TYPES)).workflows == {}


def test_a_workflow_schedules_args_are_checked_as_a_runs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TYPES
        + """
workflows:
  w:
    args: {day: "2026-01-01"}
    nodes: {a: {type: export}}
schedules:
  often:
    workflow: w
    every: 1m
    args: {day: 5, bogus: 1}
  fine:
    workflow: w
    every: 1m
    args: {day: "2026-01-31"}
""",
    )
    found = errors(path)
    assert len(found) == 2, found
    assert found[0].endswith("schedules.often.args.bogus: no node's job type declares this param")
    assert "schedules.often.args.day: for node 'a': " in found[1]


def test_a_workflow_needs_a_node(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TYPES
        + """
workflows:
  empty: {nodes: {}}
  blank:
    nodes:
  missing: {description: no nodes at all}
  fine: {nodes: {a: {type: resize}}}
""",
    )
    assert errors(path) == [
        f"{path}:9: workflows.empty.nodes: a workflow needs at least one node",
        f"{path}:11: workflows.blank.nodes: a workflow needs at least one node",
        f"{path}:12: workflows.missing.nodes: is required",
    ]


def test_a_schedule_of_a_broken_workflow_or_type_is_not_also_said_to_be_unknown(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
        job_types:
          broken: {comand: [x]}
        workflows:
          empty: {nodes: {}}
        schedules:
          a: {workflow: empty, every: 1h}
          b: {job_type: broken, every: 1h}
          c: {workflow: nowhere, every: 1h}
        """,
    )
    assert errors(path) == [
        f"{path}:2: job_types.broken.comand: unknown key; did you mean 'command'?",
        f"{path}:4: workflows.empty.nodes: a workflow needs at least one node",
        f"{path}:8: schedules.c.workflow: unknown workflow 'nowhere'",
    ]


def test_a_schedule_of_a_workflow_whose_node_runs_a_broken_type_says_only_the_types_error(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
        job_types:
          a:
            command: [echo, hi]
            timeout: forever
        workflows:
          w:
            nodes:
              x: {type: a}
        schedules:
          s: {workflow: w, every: 10s, args: {anything: 1}}
        """,
    )
    found = errors(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:4: job_types.a.timeout: invalid duration 'forever'")
