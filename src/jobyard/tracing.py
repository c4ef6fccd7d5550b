"""Optional OpenTelemetry traces: a span per API request and per job attempt.

The request spans are FastAPI's own: once a tracer provider is installed it traces
every request, named after its route template. This module installs that provider
and adds a span per job attempt and the trace ids of the JSON logs.

Off unless the process starts with ``OTEL_TRACES_EXPORTER`` set (to ``console``,
``otlp`` or any exporter installed under the SDK's ``opentelemetry_traces_exporter``
entry points) and the ``otel`` extra (the SDK) installed: ``pip install
'jobyard[otel]'``. Everything else is the SDK's own environment:
``OTEL_SERVICE_NAME`` (default ``jobyard``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_BSP_*``. Off, the SDK is not imported
(FastAPI imports the API package anyway) and each hook is one test of a module
variable: the worker's hot path pays nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from jobyard.models import Job
    from jobyard.outcomes import RunEnd

log = logging.getLogger(__name__)

_tracer: Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def setup(environ: Mapping[str, str] = os.environ) -> bool:
    """Install a tracer provider when ``OTEL_TRACES_EXPORTER`` asks for one; True if on."""
    global _tracer
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names or names == ["none"] or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed")
        return False
    service = {"service.name": environ.get("OTEL_SERVICE_NAME", "jobyard")}
    provider = TracerProvider(resource=Resource.create(service))
    for name in names:
        exporter = _exporter(name)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("jobyard")
    log.info("tracing on", extra={"exporters": ",".join(names)})
    return True


def _exporter(name: str) -> Any:
    """The exporter the SDK registers as ``name`` (``console``, ``otlp``…), or None."""
    from importlib import metadata

    found = metadata.entry_points(group="opentelemetry_traces_exporter", name=name)
    for entry in found:
        return entry.load()()
    log.warning("no OpenTelemetry trace exporter named %r is installed", name)
    return None


# -- job attempts --------------------------------------------------------------
def start_attempt(job: Job) -> tuple[Span, object] | None:
    """A span for one attempt of ``job``, current in the run's thread (its log lines)."""
    if _tracer is None:
        return None
    from opentelemetry import context, trace

    attributes: dict[str, str | int] = {
        "jobyard.job.id": job.id,
        "jobyard.job.type": job.type,
        "jobyard.job.attempt": job.attempt,
        "jobyard.job.queue": job.queue,
        "jobyard.worker": job.worker or "",
    }
    span = _tracer.start_span(f"job {job.type}", attributes=attributes)
    return span, context.attach(trace.set_span_in_context(span))


def end_attempt(started: tuple[Span, object] | None, end: RunEnd | None) -> None:
    """End the attempt's span: ``succeeded``, ``failed``, ``killed`` (by a user), or
    ``abandoned`` (no ``end``: handed back on a drain, or lost to another worker)."""
    if started is None:
        return
    from opentelemetry import context
    from opentelemetry.trace import Status, StatusCode

    span, token = started
    if end is None:
        outcome = "abandoned"
    else:
        outcome = "succeeded" if end.succeeded else "killed" if end.reason == "killed" else "failed"
        if end.reason is not None:  # exit_code, signal, timeout, sla_breach…
            span.set_attribute("jobyard.job.reason", end.reason)
        if end.exit_code is not None:
            span.set_attribute("jobyard.job.exit_code", end.exit_code)
        if not end.succeeded:
            span.set_status(Status(StatusCode.ERROR, end.error))
    span.set_attribute("jobyard.job.outcome", outcome)
    span.end()
    context.detach(token)  # type: ignore[arg-type]


# -- logs ------------------------------------------------------------------------
def log_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current span for a log line; empty when off."""
    if _tracer is None:
        return {}
    from opentelemetry import trace

    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return {}
    return {"trace_id": f"{found.trace_id:032x}", "span_id": f"{found.span_id:016x}"}
