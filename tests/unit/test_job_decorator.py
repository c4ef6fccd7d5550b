"""``@jobyard.job``: job types declared in code, loaded by ``job_modules`` in jobyard.yaml."""

from __future__ import annotations

import textwrap
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

import jobyard
from jobyard.config import ConfigError, load_config
from jobyard.jobtypes.decorator import JobDeclaration, declaration
from jobyard.jobtypes.modules import DeclarationInvalid, declare, inferred_params


def write_module(folder: Path, source: str) -> str:
    """A module of jobs in ``folder`` under a fresh name (imports are cached by name)."""
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    head = "from __future__ import annotations\nfrom typing import Any\nimport jobyard\n"
    (folder / f"{name}.py").write_text(head + textwrap.dedent(source))
    return name


def write_config(folder: Path, text: str) -> Path:
    path = folder / "jobyard.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_decorated_function_stays_callable() -> None:
    @jobyard.job(queue="default")
    def double(x: int) -> int:
        return 2 * x

    assert double(x=4) == 8

    @jobyard.job
    def bare(x: int) -> int:
        return x

    assert bare(x=1) == 1
    assert declaration(bare) == JobDeclaration(name=None, params=None, keys={})
    with pytest.raises(DeclarationInvalid, match="a job is a module-level function"):
        declare(bare)  # the child could not import it by name


def test_params_are_inferred_from_the_signature() -> None:
    def export(
        ctx: Any,
        day: date,
        limit: int = 1000,
        mode: Literal["full", "delta"] = "delta",
        note: str | None = None,
        ids: list[int] | None = None,
    ) -> None: ...

    assert inferred_params(export) == {
        "day": {"type": "string", "format": "date", "required": True},
        "limit": {"type": "integer", "default": 1000},
        "mode": {"type": "string", "enum": ["full", "delta"], "default": "delta"},
        "note": {"type": "string", "nullable": True},
        "ids": {"type": "array", "items": {"type": "integer"}, "nullable": True},
    }


def test_a_literal_with_none_is_nullable_and_a_naive_datetime_default_says_why() -> None:
    """``Literal["a", None]`` was "cannot infer a type from the annotation NoneType"; a
    naive datetime default was refused as "not a 'date-time'", which hid why."""

    def pick(ctx: Any, mode: Literal["a", "b", None] = None) -> None: ...

    assert inferred_params(pick) == {
        "mode": {"type": "string", "enum": ["a", "b"], "nullable": True}
    }

    def since(ctx: Any, at: datetime = datetime(2020, 1, 1)) -> None: ...

    with pytest.raises(
        DeclarationInvalid, match="param at: the default 2020-01-01T00:00:00 has no time zone"
    ):
        inferred_params(since)


def test_a_list_s_items_are_inferred_where_they_can_be() -> None:
    def tally(
        ctx: Any, tags: list[Literal["a", "b"] | None], rows: list[dict[str, Any]], any_: list[Any]
    ) -> None: ...

    params = inferred_params(tally)
    assert params["tags"]["items"] == {"type": ["string", "null"], "enum": ["a", "b", None]}
    assert params["rows"]["items"] == {"type": "object"}
    assert "items" not in params["any_"]  # nothing to infer: any list


def test_a_declared_type_is_the_one_written_in_yaml(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        '''
        @jobyard.job(sla={"max_runtime": "20m"}, timeout="1h", retries={"max": 2})
        def export(ctx: Any, from_date: str, limit: int = 1000) -> None:
            """Export rows."""
        ''',
    )
    declared = write_config(tmp_path, f"job_modules: [{module}]\n")
    written = tmp_path / "written.yaml"
    written.write_text(
        textwrap.dedent(f"""
        job_types:
          export:
            description: Export rows.
            python: {module}:export
            params:
              from_date: {{type: string, required: true}}
              limit: {{type: integer, default: 1000}}
            sla: {{max_runtime: 20m}}
            timeout: 1h
            retries: {{max: 2}}
        """)
    )
    from_code = load_config(declared)
    from_yaml = load_config(written)
    assert (
        from_code.job_types["export"].public_dict() == from_yaml.job_types["export"].public_dict()
    )
    assert from_code.preload_modules() == [module]  # the child imports it before its first job
    job_type = from_code.job_types["export"]
    assert job_type.validate_args({"from_date": "2026-01-01"}) == {
        "from_date": "2026-01-01",
        "limit": 1000,
    }


def test_params_from_a_pydantic_model_or_a_mapping(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
        from pydantic import BaseModel, Field

        class Window(BaseModel):
            days: int = Field(ge=1)

        @jobyard.job("window", params=Window)
        def by_model(days: int) -> None: ...

        @jobyard.job(params={"text": {"type": "string", "required": True}})
        def by_mapping(text: str) -> None: ...
        """,
    )
    types = load_config(write_config(tmp_path, f"job_modules: [{module}]\n")).job_types
    assert set(types) == {"window", "by_mapping"}
    with pytest.raises(Exception, match="less than the minimum of 1"):
        types["window"].validate_args({"days": 0})
    assert types["by_mapping"].json_schema()["required"] == ["text"]


def refused_beside_echo(folder: Path, module: str) -> ConfigError:
    """What loading ``module``'s jobs beside a job type ``echo`` of the file refuses."""
    text = f"""\
        job_modules: [{module}]
        job_types:
          echo: {{command: [echo, "{{text}}"], params: {{text: string}}}}
        """
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(folder, text))
    return raised.value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            '@jobyard.job(params={"n": {"type": "string", "minimum": 1}})\ndef bad(n): ...\n',
            ":bad: params.n.minimum: applies to integer or number params, not string",
        ),
        (
            "@jobyard.job()\ndef vague(x: set[int]) -> None: ...\n",
            ":vague: param x: cannot infer a type from the annotation set",
        ),
        (
            '@jobyard.job("echo")\ndef clash(text: str) -> None: ...\n',
            ":clash: job type 'echo' is also defined under job_types",
        ),
        ("def plain() -> None: ...\n", ": declares no job (no function has @jobyard.job)"),
        (
            '@jobyard.job(python="x:y")\ndef elsewhere() -> None: ...\n',
            ":elsewhere: python: not allowed in @jobyard.job: the function is the job",
        ),
        (
            '@jobyard.job(command=["true"])\ndef commanded() -> None: ...\n',
            ":commanded: command: not allowed in @jobyard.job: the function is the job",
        ),
    ],
)
def test_a_bad_declaration_is_one_line_naming_module_and_function(
    tmp_path: Path, source: str, message: str
) -> None:
    module = write_module(tmp_path, source)
    raised = refused_beside_echo(tmp_path, module)
    (problem,) = raised.problems
    where = f"{tmp_path / 'jobyard.yaml'}:1: job_modules.0: "
    assert str(problem).startswith(f"{where}{module}{message}")
    assert "\n" not in str(problem)


def test_every_bad_declaration_of_a_module_is_told(tmp_path: Path) -> None:
    """The first bad one hid the rest, found one restart at a time."""
    module = write_module(
        tmp_path,
        '@jobyard.job(params={"n": {"type": "string", "minimum": 1}})\ndef bad(n): ...\n'
        "@jobyard.job()\ndef vague(x: set[int]) -> None: ...\n"
        '@jobyard.job("echo")\ndef clash(text: str) -> None: ...\n'
        "@jobyard.job()\ndef good() -> None: ...\n",
    )
    raised = refused_beside_echo(tmp_path, module)
    told = [str(problem).split(f"{module}:", 1)[1] for problem in raised.problems]
    assert [line.split(":")[0] for line in told] == ["bad", "vague", "clash"]


def test_a_context_named_only_for_type_checkers_and_a_keyword_only_one(tmp_path: Path) -> None:
    """``ctx: Context`` imported under TYPE_CHECKING (as examples/example_jobs.py does) was
    "cannot read the annotations"; a keyword-only ctx loaded, then every job failed."""
    module = write_module(
        tmp_path,
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from jobyard.context import Context
            from somewhere import Report

        @jobyard.job()
        def count(ctx: Context, n: int = 10) -> Report: ...

        @jobyard.job()
        def keyword(*, ctx: Context, n: int = 1) -> None: ...
        """,
    )
    config = load_config(write_config(tmp_path, f"job_modules: [{module}]\n"))
    for name in ("count", "keyword"):
        params = config.job_types[name].params
        assert list(params) == ["n"], name
    from jobyard.child.pyjob import context_parameter, resolve

    takes = context_parameter(resolve(f"{module}:keyword"))
    assert takes is not None
    assert (takes.name, takes.kind.name) == ("ctx", "KEYWORD_ONLY")


def test_a_declared_types_undeclared_queue_names_its_module_and_function(tmp_path: Path) -> None:
    """It was told under job_types.f.queue, a key the file does not have."""
    module = write_module(tmp_path, '@jobyard.job(queue="nope")\ndef f() -> None: ...\n')
    path = write_config(tmp_path, f"queues: {{default: {{}}}}\njob_modules: [{module}]\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}:2: job_modules.0: {module}:f: queue: "
        "queue 'nope' is not declared under queues; known: default"
    )


def test_a_function_under_another_modules_decorator_reads_its_own_names(tmp_path: Path) -> None:
    """functools.wraps gives the wrapper the function's annotations, not its globals: they
    were evaluated among the decorator module's names ("name 'dt' is not defined")."""
    decorators = write_module(
        tmp_path,
        """
        import functools

        def traced(func):
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                return func(*args, **kwargs)
            return wrapper
        """,
    )
    module = write_module(
        tmp_path,
        f"""
        import datetime as dt
        import {decorators}

        @jobyard.job()
        @{decorators}.traced
        def export(at: dt.date, rows: int = 5) -> None: ...
        """,
    )
    config = load_config(write_config(tmp_path, f"job_modules: [{module}]\n"))
    params = config.job_types["export"].params
    assert list(params) == ["at", "rows"]


def test_two_modules_declaring_one_name_and_a_missing_module(tmp_path: Path) -> None:
    first = write_module(tmp_path, "@jobyard.job()\ndef same() -> None: ...\n")
    second = write_module(tmp_path, "@jobyard.job()\ndef same() -> None: ...\n")
    path = write_config(tmp_path, f"job_modules: [{first}, {second}, no_such_module_x]\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    lines = str(raised.value).splitlines()
    assert lines[0].endswith(
        f"job_modules.1: {second}:same: job type 'same' is also declared by {first}:same"
    )
    assert lines[1].endswith(
        "job_modules.2: no_such_module_x: cannot import it: "
        "ModuleNotFoundError: No module named 'no_such_module_x'"
    )


def test_an_undecorated_function_is_refused() -> None:
    def plain() -> None: ...

    with pytest.raises(DeclarationInvalid, match=r"plain: is not decorated with @jobyard\.job"):
        declare(plain)


def test_the_example_of_the_docs_loads(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "job-types.md").read_text()
    section = page.split("## Job types in code")[1]
    source = section.split("```python\n")[1].split("```")[0]
    name = f"reports_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source)
    job_types = load_config(write_config(tmp_path, f"job_modules: [{name}]\n")).job_types
    assert {"export", "report-window", "shout"} <= set(job_types)
    assert job_types["export"].json_schema()["properties"]["mode"]["enum"] == ["full", "delta"]
    assert job_types["export"].description == "Export rows from a date."
    assert job_types["report-window"].validate_args({"days": 3}) == {"days": 3, "region": "eu"}
