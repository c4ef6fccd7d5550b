"""``jobyard workflows``, ``jobyard run`` and ``jobyard runs``: DAGs and their runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from jobyard.cli import complete
from jobyard.cli.common import (
    DEFAULT_SERVER,
    JOB_FAILED,
    JsonOpt,
    ServerOpt,
    connect,
    counted,
    name_arg,
    parse_assignments,
    print_json,
)
from jobyard.cli.groups import group

PANEL = "Workflows (client commands)"
RunId = Annotated[int, typer.Argument(metavar="RUN_ID", help="A workflow run's id.")]
runs_app = group(
    "List the workflow runs (the default), show one (runs RUN_ID), stop, resume or retry one."
)
workflows_app = group("List the workflows (the default), or show one (workflows NAME).")


@workflows_app.command("list")
def workflows(
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List the workflows of the server's configuration, with their nodes."""
    with connect(server) as client:
        found = client.workflows()
    if json_:
        print_json({"items": found, "total": len(found)})
        return
    for workflow in found:
        _describe(workflow)


@workflows_app.command("show")
def show_workflow(
    name: Annotated[str, name_arg("A workflow.", complete.workflows)],
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Show one workflow: its args, time zone, and each node's type, arguments and upstream."""
    with connect(server) as client:
        workflow = client.workflow(name)
    if json_:
        print_json(workflow)
    else:
        _describe(workflow, detailed=True)


def _describe(workflow: Mapping[str, Any], detailed: bool = False) -> None:
    """The workflow's name, description and nodes; ``detailed``, its args and time zone too."""
    typer.echo(f"{workflow['name']}: {workflow['description'] or ''}".rstrip(": "))
    if detailed:
        typer.echo(f"  timezone {workflow['timezone']}")
        if workflow["args"]:
            typer.echo(f"  args {_json(workflow['args'])}")
    for node in workflow["nodes"]:
        typer.echo(_node_line(node, detailed))


def _node_line(node: Mapping[str, Any], detailed: bool) -> str:
    """``name (type)``, the nodes it comes after; ``detailed``, its args and time too."""
    words = [f"{node['name']} ({node['type']})"]
    if node["depends_on"]:
        words.append(f"after {', '.join(node['depends_on'])}")
    if detailed:
        words += [_json(node["args"])] if node["args"] else []
        words += [f"{gate} {node[gate]}" for gate in ("at", "cron") if node.get(gate)]
    return "  " + "  ".join(words)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def run(
    workflow: Annotated[
        str,
        typer.Argument(
            metavar="WORKFLOW", help="The workflow to run.", autocompletion=complete.workflows
        ),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(metavar="KEY=VALUE", help="Run arguments.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the end; exit 1 unless it succeeded.")
    ] = False,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Start a run of WORKFLOW: nodes start as soon as their upstream succeeded."""
    from jobyard.cli.progress import wait_run

    with connect(server) as client:
        started = client.start_run(workflow, parse_assignments(args or []))
        result = wait_run(client.follow_run(started["id"])) if wait else started
    _show(result, json_)
    if wait and result["state"] != "succeeded":
        raise typer.Exit(JOB_FAILED)


def _show(run_: dict[str, Any], json_: bool) -> None:
    if json_:
        print_json(run_)
        return
    from jobyard.cli.render import short_moment
    from jobyard.client.models import parse_time

    typer.echo(f"run {run_['id']} of {run_['workflow']}: {run_['state']}")
    if finished := parse_time(run_.get("finished_at")):  # a stopped run ends too
        typer.echo(f"ended {short_moment(finished)}")
    for name, node in run_.get("nodes", {}).items():
        typer.echo(f"  {name:<20} job {node['job_id']:<8} {node['state']}")


@runs_app.command("list")
def list_runs(
    workflow: Annotated[
        str | None,
        typer.Option(help="Only this workflow's runs.", autocompletion=complete.workflows),
    ] = None,
    state: Annotated[str | None, typer.Option(help="running, succeeded, failed, stopped")] = None,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Workflow runs, newest first."""
    with connect(server) as client:
        found = client.runs(workflow, state)
    if json_:
        print_json(found)
        return
    from jobyard.cli.render import short_moment
    from jobyard.client.models import parse_time

    for item in found["items"]:
        times = [parse_time(item["created_at"]), parse_time(item.get("finished_at"))]
        when = " → ".join(short_moment(time) for time in times if time)
        typer.echo(f"{item['id']:>6}  {item['workflow']:<20} {item['state']:<10} {when}")
    typer.echo(counted(found["total"], "runs"))


@runs_app.command("show")
def show_run(run_id: RunId, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """A run with every node's job and state."""
    with connect(server) as client:
        _show(client.run(run_id), json_)


def _control(action: str, doc: str) -> None:
    def command(run_id: RunId, json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
        with connect(server) as client:
            _show(client.control_run(run_id, action), json_)

    command.__doc__ = doc
    runs_app.command(action.removesuffix("-failed"))(command)


_control("stop", "Kill the run's running nodes and cancel the pending ones.")
_control("resume", "Run again the nodes a stop killed or cancelled.")
_control("retry-failed", "Restart the failed nodes; what they blocked runs after them.")


def register(app: typer.Typer) -> None:
    app.add_typer(workflows_app, name="workflows", rich_help_panel=PANEL)
    app.command(rich_help_panel=PANEL)(run)
    app.add_typer(runs_app, name="runs", rich_help_panel=PANEL)
