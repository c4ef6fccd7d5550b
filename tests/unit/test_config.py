"""Loading jobyard.yaml: every problem on its own line, as ``file:line: field: message``."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobyard.config import ConfigError, QueueConfig, empty_config, load_config
from jobyard.notify.channels import NotificationConfig
from jobyard.workflows.dag import NodeSpec, WorkflowSpec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobyard.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).splitlines()


def test_loads_types_and_queues(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          default: {}
          export: {max_running: 2}
          slow:
        job_types:
          hello:
            command: [echo, "{name}"]
            params: {name: {default: world}}
          export:
            command: [export]
            queue: export
            cwd: work/../out
        workflows: {nightly: {nodes: {greet: {type: hello}}}}
        schedules: {}
        notifications:
        """,
    )
    config = load_config(path)
    assert config.path == path
    assert config.base_dir == tmp_path
    assert set(config.job_types) == {"hello", "export"}
    assert config.job_types["hello"].source == "config"
    assert config.job_types["export"].cwd == str(tmp_path / "out")
    assert config.queues == {
        "default": QueueConfig(),
        "export": QueueConfig(max_running=2),
        "slow": QueueConfig(),
    }
    greet = NodeSpec(name="greet", type="hello")
    assert config.workflows == {"nightly": WorkflowSpec(name="nightly", nodes={"greet": greet})}
    assert config.notifications == NotificationConfig()
    assert config.has_queue("slow")


def test_without_queues_every_queue_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types:\n  a: {command: [x], queue: batch}\n")
    assert set(load_config(path).queues) == {"default", "batch"}


def test_empty_file_and_empty_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing yet\n"))
    assert config.job_types == {}
    assert set(config.queues) == {"default"}
    empty = empty_config(tmp_path)
    assert (empty.path, empty.base_dir, empty.job_types) == (None, tmp_path, {})


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert errors(missing) == [f"{missing}: cannot read: No such file or directory"]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe")
    assert errors(binary) == [f"{binary}:1: cannot read: not UTF-8 text (byte 0xff)"]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"job_types:\n  c3: {command: [echo, caf\xe9]}\n")
    assert errors(latin) == [f"{latin}:2: cannot read: not UTF-8 text (byte 0xe9)"]


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types:\n  a:\n    command: [x\n    queue: default\n")
    [line] = errors(path)
    assert line.startswith(f"{path}:4: invalid YAML: ")


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types: !!python/object/apply:os.system [echo hi]\n")
    [line] = errors(path)
    assert line.startswith(f"{path}:1: invalid YAML: ")


def test_several_documents_are_refused(tmp_path: Path) -> None:
    [line] = errors(write(tmp_path, "job_types: {}\n---\nqueues: {}\n"))
    assert ": invalid YAML: " in line


@pytest.mark.parametrize("text", ["- job_types\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:1: the file must be a mapping with keys like "
        "job_types, queues, workflows, schedules, notifications, job_modules, preload, "
        "pass_env, api_job_types, metrics_public, cors_origins, retention"
    ]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types: {}\njob_type: {}\ncolour: red\n")
    assert errors(path) == [
        f"{path}:2: job_type: unknown key; did you mean 'job_types'?",
        f"{path}:3: colour: unknown key (allowed: job_types, queues, workflows, schedules, "
        "notifications, job_modules, preload, pass_env, api_job_types, metrics_public, "
        "cors_origins, retention)",
    ]


def test_sections_must_be_mappings(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types: [a, b]\nqueues: default\n")
    assert errors(path) == [
        f"{path}:1: job_types: must be a mapping, not a list",
        f"{path}:2: queues: must be a mapping, not a string",
    ]


def test_preload_lists_the_job_modules_then_the_extra_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        job_types:
          resize: {python: "myapp.jobs:Resize"}
          count: {python: "myapp.jobs:count"}
          report: {python: "reports:monthly"}
          export: {command: [echo, hi]}
        preload: [numpy, reports, pandas.core]
        """,
    )
    config = load_config(path)
    assert config.preload == ("numpy", "reports", "pandas.core")
    assert config.preload_modules() == ["myapp.jobs", "reports", "numpy", "pandas.core"]
    assert empty_config().preload_modules() == []


def test_preload_must_be_a_list_of_module_names(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types: {}\npreload: numpy\n")
    assert errors(path) == [f"{path}:2: preload: must be a list of module names, not a string"]
    path = write(tmp_path, "preload:\n  - numpy\n  - not a module\n  - 3\n")
    assert errors(path) == [
        f"{path}:3: preload.1: 'not a module' is not a module name (like pkg.mod)",
        f"{path}:4: preload.2: 3 is not a module name (like pkg.mod)",
    ]


BAD = """
queues:
  default: {}
  export: {max_running: 0}
job_types:
  typo:
    comand: [x]
  export:
    command: [x]
    params:
      limit: {type: integer, minimum: x}
  backoff:
    command: [x]
    retries: {max: 1, backoff: linear}
  duration:
    command: [x]
    timeout: soon
  placeholder:
    command:
      - echo
      - "{nope}"
  both:
    command: [x]
    python: mod:func
  neither:
    description: nothing to run
  undeclared:
    command: [x]
    queue: exprot
  mapping: just a string
  sourced:
    command: [x]
    source: api
"""


@pytest.fixture
def bad_path(tmp_path: Path) -> Path:
    return write(tmp_path, BAD)


@pytest.mark.parametrize(
    "expected",
    [
        ":3: queues.export.max_running: Input should be greater than or equal to 1",
        ":6: job_types.typo.comand: unknown key; did you mean 'command'?",
        ":10: job_types.export.params.limit.minimum: Input should be a valid number",
        ":13: job_types.backoff.retries.backoff: Input should be 'fixed' or 'exponential'",
        ":16: job_types.duration.timeout: invalid duration 'soon': use seconds or a "
        "duration like 1h30m (units: ms, s, m, h, d, w)",
        ":20: job_types.placeholder.command.1: placeholder {nope} names no param",
        ":22: job_types.both.command: give either command or python, not both",
        ":24: job_types.neither.command: give command (a program and its arguments) "
        "or python (module:function)",
        ":28: job_types.undeclared.queue: queue 'exprot' is not declared under queues; "
        "did you mean 'export'?",
        ":29: job_types.mapping: a job type is a mapping of keys "
        "(command or python, params, queue, …)",
        ":32: job_types.sourced.source: is set by jobyard, not in the file",
    ],
)
def test_every_problem_is_reported_with_its_line(bad_path: Path, expected: str) -> None:
    assert f"{bad_path}{expected}" in errors(bad_path)


def test_problems_are_in_file_order(bad_path: Path) -> None:
    lines = [int(line.split(":")[1]) for line in errors(bad_path)]
    assert lines == sorted(lines)
    assert len(lines) == 11  # typo's missing command is its misspelt key, said once


def test_error_carries_structured_problems(bad_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(bad_path)
    first = info.value.problems[0]
    assert (first.file, first.line, first.field) == (str(bad_path), 3, "queues.export.max_running")


def test_bad_param_spec_in_flow_and_block_style(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        job_types:
          export:
            command: [x]
            params:
              limit:
                type: integer
                default: 0
                minimum: 1
              code: {type: string, pattern: "["}
        """,
    )
    assert errors(path) == [
        f"{path}:7: job_types.export.params.limit.default: 0 is less than the minimum of 1",
        f'{path}:9: job_types.export.params.code.pattern: "[" is not a "regex"',
    ]


def test_the_default_queue_always_exists(tmp_path: Path) -> None:
    path = write(tmp_path, "queues: {batch: {}}\njob_types:\n  a: {command: [x]}\n")
    assert set(load_config(path).queues) == {"default", "batch"}


def test_bad_queue_name(tmp_path: Path) -> None:
    path = write(tmp_path, "queues:\n  default: {}\n  bad queue: {}\n")
    assert errors(path) == [
        f"{path}:3: queues.bad queue: a queue name is letters, digits, '_', '.', '-'"
    ]


def test_dotted_type_names_find_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types:\n  db.export:\n    command: [x]\n    priority: high\n")
    assert errors(path) == [
        f"{path}:4: job_types.db.export.priority: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_a_key_written_twice_is_a_problem_not_a_silent_replacement(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        job_types:
          echo: {command: [echo]}
          echo: {command: [echo, again]}
        workflows:
          w:
            nodes:
              a: {type: echo}
              a: {type: echo, args: {}}
        """,
    )
    assert [line.split(":", 1)[1] for line in errors(path)] == [
        "3: job_types.echo: written twice (also on line 2): keep one",
        "8: workflows.w.nodes.a: written twice (also on line 7): keep one",
    ]
    # An alias names a node again, and may name its own ancestor: each is walked once.
    looped = write(tmp_path, "job_types:\n  echo: &e {command: [echo], tags: *e}\n")
    [said] = errors(looped)
    assert said.endswith(":2: job_types.echo.tags: Input should be a valid list")


def test_a_yaml_error_at_the_end_names_the_last_line_not_the_one_after(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types:\n  a: {command: [x]\n")  # never closed
    [line] = errors(path)
    assert line.startswith(f"{path}:2: invalid YAML: ")


def test_keys_and_dates_are_text_as_written(tmp_path: Path) -> None:
    # YAML 1.1 read yes: and on: as True (the same key as 1:, so one type replaced the
    # other unseen), ~: as None, and an unquoted date as a date no JSON Schema takes.
    path = write(
        tmp_path,
        """
        job_types:
          1: {command: [echo, one]}
          yes: {command: [echo, "yes"]}
          on: {command: [echo, "on"]}
          dated:
            command: [echo, "{day}"]
            params:
              day: {type: string, format: date, default: 2026-01-01}
        queues:
          no: {}
        workflows:
          w: {args: {day: 2026-03-01}, nodes: {a: {type: dated}}}
        schedules:
          t: {job_type: dated, every: 1h, args: {day: 2026-03-01}}
          once: {job_type: dated, at: "2027-01-01T00:00:00Z", args: {day: 2027-01-01}}
          spaced: {job_type: dated, at: 2027-01-01 10:00:00 +1}
          short: {job_type: dated, at: 2027-1-2 10:00:00}
        """,
    )
    config = load_config(path)
    assert {"1", "yes", "on", "dated"} <= set(config.job_types)
    assert config.job_types["yes"].command == ["echo", "yes"]  # not replaced by 1:
    assert "no" in config.queues
    assert config.job_types["dated"].prepare({})[0] == {"day": "2026-01-01"}
    assert config.workflows["w"].args == {"day": "2026-03-01"}
    assert config.schedules["t"].args == {"day": "2026-03-01"}
    # YAML's own forms of a time are times still (ISO text for the fields that read one).
    assert config.schedules["spaced"].at == datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
    assert config.schedules["short"].at == datetime(2027, 1, 2, 10, 0, tzinfo=UTC)


def test_a_key_no_name_may_have_is_named_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "job_types:\n  ok: {command: [x]}\n  ~: {command: [x]}\n")
    [said] = errors(path)
    assert said.startswith(f"{path}:3: job_types.~")  # its own line, its own text


def test_values_no_database_stores_are_refused_where_they_are_written(tmp_path: Path) -> None:
    """The API refuses them in any request; from the file, a job, run or schedule made of
    them failed at its first submit, differently on each database (a 500, a false 503, a
    job that ran ``echo nan``)."""
    path = write(
        tmp_path,
        """
        job_types:
          nan:
            command: [echo, "{n}"]
            params:
              n: {type: number, default: .nan}
          nul:
            command: ["a\\0b"]
        workflows:
          w:
            nodes:
              a: {type: nan, args: {n: 99999999999999999999999}}
        schedules:
          s: {job_type: nan, every: 1h, args: {n: -.inf}}
        """,
    )
    found = errors(path)
    assert f"{path}:5: job_types.nan.params.n.default: must be a finite number" in found[0]
    assert found[1] == f"{path}:7: job_types.nul.command.0: contains a NUL character"
    assert found[2].startswith(f"{path}:11: workflows.w.nodes.a.args.n: is out of range")
    assert found[3].startswith(f"{path}:13: schedules.s.args.n: must be a finite number")
