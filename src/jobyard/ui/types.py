"""Job types: the list, one type with its JSON Schema, and the editor of API types (admins)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from jobyard import storable
from jobyard.api import inputs
from jobyard.api.resources import get_node
from jobyard.errors import Invalid, NotFound
from jobyard.jobtypes.spec import parse_job_type
from jobyard.node import Node
from jobyard.text import read_json
from jobyard.ui import forms
from jobyard.ui.render import fragment, missing, page
from jobyard.ui.viewer import Looker

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
EXAMPLE = {
    "description": "Say hello",
    "command": ["echo", "hello", "{who}"],
    "params": {"who": {"type": "string", "default": "world", "description": "whom to greet"}},
}


@router.get("/types", response_class=HTMLResponse)
def type_list(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    example = json.dumps(EXAMPLE, indent=2)
    return page(request, looker, "types.html", types=node.catalog.all(), example=example)


@router.get("/types/-/preview", response_class=HTMLResponse)
def preview(looker: Looker, node: NodeDep, definition: str = "", name: str = "") -> HTMLResponse:
    """The JSON Schema and submit form a definition makes, or why it makes none (not stored).

    A GET, so that previews while typing are not changes (nor audit entries)."""
    try:
        data = read_json(definition)
    except ValueError as exc:
        return HTMLResponse(fragment("type_preview.html", problems=[f"not JSON yet: {exc}"]))
    if unstorable := list(islice(storable.problems(data), inputs.MAX_ERRORS)):
        said = [{"field": field, "message": message} for field, message in unstorable]
        return HTMLResponse(fragment("type_preview.html", problems=_said(said)))
    try:  # as the API would take it: its body is refused for the same values first
        job_type = parse_job_type(name or "preview", data, source="api")
    except Invalid as exc:
        return HTMLResponse(fragment("type_preview.html", problems=_said(exc.errors)))
    if found := node.catalog.problems(job_type):  # what saving it would be refused for
        return HTMLResponse(fragment("type_preview.html", problems=_said(found)))
    schema = job_type.json_schema()
    return HTMLResponse(
        fragment("type_preview.html", problems=[], schema=schema, fields=forms.fields(schema))
    )


def _said(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{e.get('field') or 'definition'}: {e.get('message')}" for e in errors]


@router.get("/types/{name}", response_class=HTMLResponse)
def type_page(request: Request, name: str, looker: Looker, node: NodeDep) -> HTMLResponse:
    try:
        job_type = node.catalog.require(name)
    except NotFound:
        return missing(request, looker, f"There is no job type {name!r}.")
    stored = node.store.job_types.get_job_type(name) if job_type.source == "api" else None
    return page(
        request,
        looker,
        "type.html",
        job_type=job_type,
        schema=job_type.json_schema(),
        definition=job_type.public_dict(),
        editable=json.dumps(stored, indent=2) if stored is not None else None,
        fields=forms.fields(job_type.json_schema()),
    )
