"""Tracing is off unless OTEL_TRACES_EXPORTER asks for it, and then costs no SDK import."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from jobyard import tracing
from jobyard.logs import JsonFormatter

OFF = """
import sys
from jobyard import tracing
from jobyard.api import create_app
from jobyard.cli import app
from jobyard.worker import attempt, loop
assert not tracing.setup({})
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
print(",".join(loaded))
"""


def test_nothing_of_the_sdk_is_imported_when_tracing_is_off() -> None:
    found = subprocess.run([sys.executable, "-c", OFF], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == ""


def test_setup_stays_off_without_an_exporter() -> None:
    assert not tracing.setup({})
    assert not tracing.setup({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.setup({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled()


def test_off_the_hooks_do_nothing_and_logs_carry_no_ids() -> None:
    assert tracing.start_attempt(None) is None  # type: ignore[arg-type]
    tracing.end_attempt(None, None)
    assert tracing.log_ids() == {}
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "x"})
    assert set(json.loads(JsonFormatter().format(record))) == {"time", "level", "logger", "message"}
