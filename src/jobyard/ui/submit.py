"""Submit forms: a job from its type's JSON Schema (``/submit/{type}``), a workflow run from
its arguments (``/workflows/{name}/start``). Server errors are shown next to their fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from jobyard import storable
from jobyard.api.resources import get_node
from jobyard.api.schemas import SubmitJob
from jobyard.errors import Invalid, NotFound
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.params import ArgsInvalid
from jobyard.jobtypes.spec import JobType
from jobyard.manager import Submission
from jobyard.node import Node
from jobyard.ui import forms
from jobyard.ui.render import missing, page
from jobyard.ui.viewer import Looker
from jobyard.workflows.spec import WorkflowSpec

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
#: The form's own inputs; the ``_`` keeps them apart from the type's parameters.
OPTIONS = ("_queue", "_priority", "_name", "_hold", "_run_at")


@router.get("/submit", response_class=HTMLResponse)
def choose(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    if not looker.operates:
        return page(request, looker, "forbidden.html", status=403, what="the submit forms")
    workflows = sorted(node.runs.workflows.items())
    return page(request, looker, "choose.html", types=node.catalog.all(), workflows=workflows)


@router.get("/submit/{name}", response_class=HTMLResponse)
def job_form(request: Request, name: str, looker: Looker, node: NodeDep) -> HTMLResponse:
    if not looker.operates:
        return page(request, looker, "forbidden.html", status=403, what="a submit form")
    job_type = node.catalog.get(name)
    if job_type is None:
        return missing(request, looker, f"There is no job type {name!r}.")
    schema = job_type.json_schema()
    return _form_page(request, looker, "submit.html", f"/submit/{name}", schema, job_type=job_type)


@router.post("/submit/{name}", name="submit_form", response_class=HTMLResponse)
async def submit_form(request: Request, name: str, looker: Looker, node: NodeDep) -> Response:
    """Read the form, submit the job; the page again with the errors, or on to the job."""
    if not looker.operates:
        return page(request, looker, "forbidden.html", status=403, what="a submit form")
    job_type = node.catalog.get(name)
    if job_type is None:
        return missing(request, looker, f"There is no job type {name!r}.")
    sent = await _form(request)
    schema = job_type.json_schema()
    args, errors = forms.args_from_form(schema, sent)
    options, option_errors = _options(sent)
    errors |= option_errors  # a field's own refusal (it could not be read) says the most
    refused, general = _api_errors({"type": name, "args": args, **options})
    errors = refused | errors
    if errors or general:  # no submit: what it would check is checked here, every error at once
        errors = _args_errors(job_type, args, unread=errors) | errors
    if (errors or general) and (queue := options.get("queue")):  # what the submit would say
        for problem in node.manager.queue_problems(name, queue):
            errors.setdefault("_queue", problem["message"])
    if not errors and not general:
        try:
            job, _ = node.manager.submit(Submission(type=name, args=args, **options))
        except Invalid as exc:
            errors, general = _field_errors(exc)
        else:
            return _go(request, f"/jobs/{job.id}")
    action = f"/submit/{name}"
    return _form_page(
        request, looker, "submit.html", action, schema, sent, errors, general, job_type=job_type
    )


@router.get("/workflows/{name}/start", response_class=HTMLResponse)
def run_form(request: Request, name: str, looker: Looker, node: NodeDep) -> HTMLResponse:
    if not looker.operates:
        return page(request, looker, "forbidden.html", status=403, what="a run form")
    try:
        spec = node.runs.workflow(name)
    except NotFound:
        return missing(request, looker, f"There is no workflow {name!r}.")
    schema = _run_schema(spec, node.catalog)
    return _form_page(
        request, looker, "start.html", f"/workflows/{name}/start", schema, workflow=name
    )


@router.post("/workflows/{name}/start", name="start_run_form", response_class=HTMLResponse)
async def start_form(request: Request, name: str, looker: Looker, node: NodeDep) -> Response:
    if not looker.operates:
        return page(request, looker, "forbidden.html", status=403, what="a run form")
    try:
        spec = node.runs.workflow(name)
    except NotFound:
        return missing(request, looker, f"There is no workflow {name!r}.")
    sent = await _form(request)
    schema = _run_schema(spec, node.catalog)
    args, unread = forms.args_from_form(schema, sent)
    errors, general = _api_errors({"args": args}, model=False)
    if not general:
        # Every node's refusal at once, as the API's (the run's start stops at the first
        # node), but of the fields that could not be read ("required" is no news there).
        try:
            node.runs.check_run_args(name, args)
        except Invalid as exc:
            found, general = _field_errors(exc)
            # A field's own refusal (a value no database stores) says more than a node's.
            errors = {f: m for f, m in found.items() if f not in unread} | errors
    errors |= unread
    if not errors and not general:
        try:
            run, _ = node.runs.start(name, args)
        except Invalid as exc:
            errors, general = _field_errors(exc)
        else:
            return _go(request, f"/runs/{run.id}")
    action = f"/workflows/{name}/start"
    return _form_page(
        request, looker, "start.html", action, schema, sent, errors, general, workflow=name
    )


async def _form(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    return {key: [str(v) for v in form.getlist(key)] for key in form}


def _options(sent: Mapping[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The submission's own settings: queue, priority, name, hold and run_at (in UTC)."""

    def one(key: str) -> str:
        values = sent.get(key) or [""]
        return values[-1].strip()

    options: dict[str, Any] = {"hold": one("_hold") not in ("", "false", "off")}
    errors: dict[str, str] = {}
    for key in ("queue", "name"):
        if value := one(f"_{key}"):
            options[key] = value
    if priority := one("_priority"):
        try:
            options["priority"] = int(priority)
        except ValueError:
            errors["_priority"] = "must be a whole number"
    if run_at := one("_run_at"):
        try:
            moment = datetime.fromisoformat(run_at)
            options["run_at"] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            errors["_run_at"] = "must be a date and time"
    return options, errors


def _api_errors(body: dict[str, Any], *, model: bool = True) -> tuple[dict[str, str], list[str]]:
    """What the JSON API refuses in ``body`` before it reaches the manager: values no
    database can store, and (with ``model``) a submission's bounds, by form field."""
    found = [(field, message) for field, message in storable.problems(body)]
    if model:
        try:
            SubmitJob.model_validate(body)
        except ValidationError as exc:
            found += [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
    return _by_field(found)


def _args_errors(
    job_type: JobType, args: dict[str, Any], unread: Mapping[str, str]
) -> dict[str, str]:
    """What the type says of ``args``, by form field, but of the fields that could not be
    read (missing from ``args``, so "required" is no news)."""
    try:
        job_type.prepare(args)
    except ArgsInvalid as exc:
        fields, _ = _field_errors(exc.under_args(exc.detail))
        return {field: message for field, message in fields.items() if field not in unread}
    return {}


def _field_errors(exc: Invalid) -> tuple[dict[str, str], list[str]]:
    """The server's errors by form field (``args.limit`` → ``limit``); the rest apart."""
    found = [(str(e.get("field", "")), str(e.get("message", ""))) for e in exc.errors]
    fields, general = _by_field(found)
    return fields, general or ([] if fields else [exc.detail])


def _by_field(found: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    fields: dict[str, str] = {}
    general: list[str] = []
    for field, message in found:
        if field.startswith("args."):
            fields.setdefault(field.removeprefix("args.").split(".")[0], message)
        elif field in ("queue", "priority", "run_at", "name"):
            fields.setdefault(f"_{field}", message)
        else:
            general.append(f"{field}: {message}" if field else message)
    return fields, general


def _run_schema(spec: WorkflowSpec, catalog: Catalog) -> dict[str, Any]:
    """What a run of ``spec`` takes: each param that a node's type declares and the node
    does not pin (as the first such node's type checks it), the workflow's ``args`` as
    their defaults. None is required: a workflow runs with no run arguments."""
    properties: dict[str, Any] = {}
    for node in spec.nodes.values():
        job_type = catalog.get(node.type)
        declared = job_type.json_schema().get("properties") or {} if job_type else {}
        for name, prop in declared.items():
            if name not in node.args and isinstance(prop, dict):
                properties.setdefault(name, _unset(prop))
    for name, value in spec.args.items():
        properties[name] = properties.get(name, {}) | {"default": value}
    return {"type": "object", "properties": properties}


def _unset(prop: dict[str, Any]) -> dict[str, Any]:
    """A node type's param as a run's input left empty unless filled in: its type's default
    is not sent (another node's type may have another), and a yes/no is a choice that
    may stay unmade (a checkbox always sends one)."""
    unset = {key: value for key, value in prop.items() if key != "default"}
    if unset.get("type") == "boolean":
        unset["enum"] = [True, False]
    return unset


def _go(request: Request, target: str) -> Response:
    """On to ``target``: htmx by its header (its fetch would follow a redirect itself
    and swap the next page into the form), a plain form post by a redirect."""
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return Response(status_code=303, headers={"Location": target})


def _form_page(
    request: Request,
    looker: Looker,
    template: str,
    action: str,
    schema: dict[str, Any],
    sent: Mapping[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` with the form of ``schema`` that posts to ``action``: empty, or filled
    with what was ``sent`` and the ``errors`` it met (a job's form or a run's)."""
    context.setdefault("job_type", None)  # the form reads it; a run's has none
    return page(
        request,
        looker,
        template,
        part="submit_form.html",
        fields=forms.fields(schema),
        sent=sent or {},
        errors=errors or {},
        general=general or [],
        action=action,
        **context,
    )
