"""/api/v1/schedules: what fires when; create, pause, resume, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, Field

from jobyard.api.resources import get_node
from jobyard.api.schemas import location
from jobyard.clock import utcnow
from jobyard.node import Node
from jobyard.schedules.book import Entry, ScheduleBook
from jobyard.schedules.due import describe, next_fire

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


async def get_book(node: Annotated[Node, Depends(get_node)]) -> ScheduleBook:
    return node.schedules


Book = Annotated[ScheduleBook, Depends(get_book)]
Definition = Annotated[
    dict[str, Any],
    Body(
        description="a schedule as in jobyard.yaml, plus its name",
        examples=[{"name": "cleanup", "job_type": "export", "args": {}, "every": "15m"}],
    ),
]


class ScheduleOut(BaseModel):
    name: str
    source: str
    target: dict[str, str] = Field(description="{'job_type': name} or {'workflow': name}")
    args: dict[str, Any]
    trigger: str
    description: str = Field(description="the trigger in words")
    timezone: str
    overlap: str
    misfire: str
    paused: bool
    paused_by: str = Field(
        description="whose paused state this is: 'file' (the configuration file's `paused`) "
        "or 'api' (a pause or resume through the API; for a schedule of the file, one that "
        "says otherwise than the file, and lasts until the file's `paused` changes)"
    )
    next_fire: datetime | None
    last_fire: datetime | None

    @classmethod
    def of(cls, entry: Entry, last_fire: datetime | None, now: datetime) -> ScheduleOut:
        spec = entry.spec
        kind, target = spec.target
        return cls(
            name=spec.name,
            source=entry.source,
            target={kind: target},
            args=spec.args,
            trigger=spec.trigger,
            description=describe(spec),
            timezone=spec.timezone,
            overlap=spec.overlap.value,
            misfire=spec.misfire.value,
            paused=spec.paused,
            paused_by=entry.paused_by,
            next_fire=None if spec.paused else next_fire(spec, now),
            last_fire=last_fire,
        )


class ScheduleList(BaseModel):
    items: list[ScheduleOut]
    total: int


def _out(book: ScheduleBook, entry: Entry) -> ScheduleOut:
    last = book.store.schedules.last_fire(entry.spec.name)
    return ScheduleOut.of(entry, last.fire_time if last else None, utcnow())


@router.get("", response_model=ScheduleList)
def list_schedules(book: Book) -> ScheduleList:
    """Every schedule with its next fire time."""
    items = [_out(book, entry) for entry in book.all().values()]
    return ScheduleList(items=items, total=len(items))


@router.get("/{name}", response_model=ScheduleOut)
def get_schedule(name: str, book: Book) -> ScheduleOut:
    return _out(book, book.get(name))


@router.post("", status_code=201, response_model=ScheduleOut)
def create_schedule(definition: Definition, book: Book, response: Response) -> ScheduleOut:
    """Store a schedule (409 if the name exists); 422 names every bad field."""
    made = _out(book, book.create(definition, utcnow()))
    response.headers["Location"] = location(router.prefix, made.name)  # names it in the audit
    return made


@router.post("/{name}/pause", response_model=ScheduleOut)
def pause_schedule(name: str, book: Book) -> ScheduleOut:
    """Fire nothing until resumed; the times that pass meanwhile are not caught up."""
    return _out(book, book.set_paused(name, True, utcnow()))


@router.post("/{name}/resume", response_model=ScheduleOut)
def resume_schedule(name: str, book: Book) -> ScheduleOut:
    return _out(book, book.set_paused(name, False, utcnow()))


@router.delete("/{name}", status_code=204)
def delete_schedule(name: str, book: Book) -> Response:
    """Delete a stored schedule (one of the configuration file: 409)."""
    book.delete(name)
    return Response(status_code=204)
