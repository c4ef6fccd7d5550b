"""/api/v1/job-types: reusable templates with a JSON Schema of their parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status

from jobyard.api.resources import get_catalog, get_writable_catalog
from jobyard.api.schemas import JobTypeList, JobTypeOut, location
from jobyard.clock import utcnow
from jobyard.errors import Invalid
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import JobType

router = APIRouter(prefix="/api/v1/job-types", tags=["job types"])
Types = Annotated[Catalog, Depends(get_catalog)]
WritableTypes = Annotated[Catalog, Depends(get_writable_catalog)]  # 403: api_job_types: false
Definition = Annotated[
    dict[str, Any],
    Body(
        description="a job type as in jobyard.yaml (command or python, params, queue, …)",
        examples=[
            {
                "name": "greet",
                "description": "Say hello",
                "command": ["echo", "hello", "{who}"],
                "params": {"who": {"type": "string", "default": "world"}},
            }
        ],
    ),
]


def _out(job_type: JobType) -> JobTypeOut:
    public = job_type.public_dict()
    schema = job_type.json_schema()
    defaults = {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if "default" in prop
    }
    return JobTypeOut(
        name=job_type.name,
        description=job_type.description,
        kind=public["kind"],
        source=job_type.source,
        params=schema,
        defaults=defaults,
        definition=public,
    )


@router.get("", response_model=JobTypeList)
def list_types(catalog: Types) -> JobTypeList:
    items = [_out(t) for t in catalog.all()]
    return JobTypeList(items=items, total=len(items))


@router.get("/{name}", response_model=JobTypeOut)
def get_type(name: str, catalog: Types) -> JobTypeOut:
    return _out(catalog.require(name))


@router.post("", status_code=201, response_model=JobTypeOut)
def create_type(definition: Definition, catalog: WritableTypes, response: Response) -> JobTypeOut:
    """Create a type stored in the database (409 if the name exists)."""
    name = definition.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid("a job type needs a name", [{"field": "name", "message": "required"}])
    job_type, _ = catalog.put(name, definition, utcnow(), replace=False)  # 409 if it exists
    response.headers["Location"] = location(router.prefix, name)  # names it in the audit
    return _out(job_type)


@router.put(
    "/{name}",
    response_model=JobTypeOut,
    responses={201: {"model": JobTypeOut, "description": "created"}},
)
def put_type(
    name: str, definition: Definition, catalog: WritableTypes, response: Response
) -> JobTypeOut:
    """Create or replace a type stored in the database."""
    job_type, created = catalog.put(name, definition, utcnow())
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = location(router.prefix, name)
    return _out(job_type)


@router.delete("/{name}", status_code=204)
def delete_type(name: str, catalog: WritableTypes) -> Response:
    """Delete a type stored in the database; jobs already submitted keep their definition."""
    catalog.delete(name)
    return Response(status_code=204)
