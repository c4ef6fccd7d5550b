"""Pure pieces of the CLI: sparklines, CPU shares, tables that fit, --since, YAML definitions."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from rich.console import Console

from jobyard.cli.common import parse_moment
from jobyard.cli.definitions import load
from jobyard.cli.progress import follow_job
from jobyard.cli.render import (
    BLOCKS,
    JOB_COLUMNS,
    cpu_percents,
    moment,
    short_moment,
    sparkline,
)
from jobyard.cli.schedules import local_at
from jobyard.cli.tables import Column, fit_table
from jobyard.client.calls import iso
from jobyard.client.events import Event
from jobyard.client.records import Sample

T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def test_sparkline_spans_the_blocks_from_lowest_to_highest() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == BLOCKS
    assert sparkline([5, 5, 5]) == "▁▁▁"  # flat: all at the bottom
    assert sparkline([]) == ""
    long = sparkline([float(i) for i in range(400)], width=40)
    assert len(long) == 40
    assert (long[0], long[-1]) == ("▁", "█")


def test_cpu_percents_come_from_cpu_time_between_samples() -> None:
    samples = [
        Sample(1, T0, 0.0, 10),
        Sample(1, T0 + timedelta(seconds=2), 1.0, 10),  # one CPU second in two: 50 %
        Sample(1, T0 + timedelta(seconds=3), 2.0, 10),  # a full core: 100 %
        Sample(1, T0 + timedelta(seconds=3), 2.5, 10),  # no time passed: left out
    ]
    assert cpu_percents(samples) == [50.0, 100.0]


def render(table: object, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def test_a_table_too_wide_leaves_out_columns_before_cutting_a_key() -> None:
    columns = (
        Column("id", "key"),
        Column("type", "key"),
        Column("note", "text", drop=2),
        Column("attempt", "fixed", drop=1),
    )
    long_name = "an-export-type-with-a-very-long-name-indeed"
    rows = [("12345", long_name, "some words that can wrap " * 3, "1/3")]
    wide = render(fit_table(columns, rows, width=200), 200)
    assert "attempt" in wide[1]
    narrow = render(fit_table(columns, rows, width=70), 70)
    assert max(map(len, narrow)) <= 70
    assert "attempt" not in "\n".join(narrow)  # dropped first
    assert any(long_name in line for line in narrow)
    assert any("note" in line for line in narrow)  # wrapped, kept
    tiny = render(fit_table(columns, rows, width=60), 60)
    assert any(long_name in line for line in tiny)
    assert "note" not in "\n".join(tiny)


@pytest.mark.parametrize("width", [80, 60, 40])
def test_a_name_longer_than_the_terminal_is_folded_whole_and_the_id_stays(width: int) -> None:
    """Nothing left to drop, Rich cut every column: the id to nothing, the state to
    "suc…", the name with an ellipsis."""
    columns = (Column("id", "key"), Column("type", "key"), Column("state", "fixed"))
    long_name = "nightly-export-of-the-warehouse-" + "x" * 50  # 82 characters, a valid name
    rows = [("123", long_name, "succeeded"), ("124", "tick", "succeeded")]
    lines = render(fit_table(columns, rows, width=width), width)
    assert max(map(len, lines)) <= width
    assert sum(line.count("succeeded") for line in lines) == 2
    assert any("123" in line for line in lines)
    assert any("124" in line for line in lines)
    folded = "".join(line.split("│")[2].strip() for line in lines if line.startswith("│"))
    assert long_name in folded  # every character of it, in order
    assert "…" not in "".join(lines)


@pytest.mark.parametrize(("width", "left_out"), [(80, set()), (72, {"attempt"})])
def test_a_long_job_name_is_folded_and_the_columns_stay(width: int, left_out: set[str]) -> None:
    """One 58-character name left out the name, progress, attempt, created and runtime
    columns of every row at 80 columns, as if it could not fold; in 72, what does not
    fit with the name folded still goes."""
    long_name = "monthly-report-for-the-warehouse-team-with-every-export-xx"  # 58 characters
    rows = [
        ("123", "echo", long_name, "succeeded", "—", "1/1", "16:08:26", "0.1s"),
        ("124", "lines", "", "queued", "—", "0/1", "16:08:27", ""),
    ]
    lines = render(fit_table(JOB_COLUMNS, rows, width=width), width)
    assert max(map(len, lines)) <= width
    header = {word for word in lines[1].split() if word != "┃"}
    assert header == {column.header for column in JOB_COLUMNS} - left_out, lines
    folded = "".join(line.split("│")[3].strip() for line in lines if line.startswith("│"))
    assert folded == long_name  # whole, in order
    assert "…" not in "".join(lines)


def test_word_columns_wrap_between_names_only() -> None:
    columns = (Column("name", "key"), Column("queues", "words"))
    queues = ", ".join(f"queue-number-{i}" for i in range(6))
    lines = render(fit_table(columns, [("w1", queues)], width=40), 40)
    assert max(map(len, lines)) <= 40
    for i in range(6):
        assert any(f"queue-number-{i}" in line for line in lines)


def test_since_takes_a_duration_or_an_iso_time() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_moment("2h", now=now) == now - timedelta(hours=2)
    assert parse_moment("1d", now=now) == now - timedelta(days=1)
    assert parse_moment("30m", now=now) == now - timedelta(minutes=30)
    assert parse_moment("2026-05-01T06:00:00+02:00") == datetime(2026, 5, 1, 4, 0, tzinfo=UTC)
    naive = parse_moment("2026-05-01T06:00")
    assert naive == datetime(2026, 5, 1, 6, 0).astimezone()  # local time
    assert parse_moment(None) is None
    for bad in ("yesterday", "100000000d"):  # the duration reaches back before year 1
        with pytest.raises(typer.Exit):
            parse_moment(bad)


@pytest.mark.parametrize(
    ("text", "names", "field"),
    [
        ("job_types:\n  a: {command: [x]}\n  b: {command: [y]}\n", ["a", "b"], "job_types.a"),
        ("a: {command: [x]}\n", ["a"], "a"),
        ("name: a\ncommand: [x]\n", ["a"], ""),
    ],
)
def test_definition_files_take_three_shapes(
    tmp_path: Path, text: str, names: list[str], field: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    found = load(path, "job_types")
    assert [d.name for d in found] == names
    assert found[0].field == field
    assert found[0].body == {"command": ["x"]}


def test_a_bad_definition_file_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("job_types:\n  a: 3\n")
    with pytest.raises(typer.Exit) as exited:
        load(path, "job_types")
    assert exited.value.exit_code == 2
    error = capsys.readouterr().err
    assert (
        error
        == f"jobyard: error: {path}: job_types.a: expected a mapping (the definition of 'a')\n"
    )


def test_a_progress_message_with_brackets_is_shown_as_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A job's own words: "[/x]" read as styling raises (rich's MarkupError) and would end
    # `submit --follow` on a terminal.
    screen = io.StringIO()

    def terminal(stderr: bool = False) -> Console:
        return Console(file=screen, force_terminal=True, markup=False, width=100)

    monkeypatch.setattr("jobyard.cli.render.console", terminal)
    events = [
        Event(1, "progress", {"job_id": 7, "fraction": 0.5, "message": "step [/x] of [a-z]"}),
        Event(None, "close", {"job_id": 7, "state": "succeeded"}),
    ]
    assert follow_job(events) == "succeeded"
    assert "step [/x] of [a-z]" in screen.getvalue()


def test_schedules_add_reads_at_without_an_offset_as_local_time_as_submit_does() -> None:
    berlin = timezone(timedelta(hours=1))
    assert local_at("2026-12-24T09:00", berlin) == "2026-12-24T09:00:00+01:00"
    assert local_at("2026-12-24T09:00Z", berlin) == "2026-12-24T09:00Z"  # as given
    assert local_at("tomorrow", berlin) == "tomorrow"  # the server says what is wrong
    assert local_at(None, berlin) is None


def test_an_at_that_the_clocks_skip_is_refused_as_with_a_timezone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert local_at("2027-03-28T01:30", berlin) == "2027-03-28T01:30:00+01:00"
    with pytest.raises(ValueError, match=r"does not exist in Europe/Berlin \(clocks skip it\)"):
        local_at("2027-03-28T02:30", berlin)  # was sent as 02:30+01:00, an hour off
    assert local_at("2027-10-31T02:30", berlin) == "2027-10-31T02:30:00+02:00"  # twice: first


@pytest.fixture
def machine_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Sets this process's local time zone (``TZ``) for the test; puts it back after."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_a_local_time_the_clocks_skip_is_refused_wherever_it_is_given(
    machine_zone: Callable[[str], None],
) -> None:
    machine_zone("Europe/Berlin")
    gap = datetime(2027, 3, 28, 2, 30)
    with pytest.raises(ValueError, match=r"does not exist in this machine's time zone"):
        iso(gap, "run_at")  # was sent as 01:30+01:00, an hour before the time given
    with pytest.raises(ValueError, match="clocks skip it"):
        local_at("2027-03-28T02:30")
    assert iso(datetime(2027, 3, 28, 3, 30), "run_at") == "2027-03-28T03:30:00+02:00"


def test_times_past_year_9999_in_the_local_zone_are_shown_not_a_crash(
    machine_zone: Callable[[str], None],
) -> None:
    machine_zone("Asia/Tokyo")
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)  # Tokyo is in year 10000 then
    assert short_moment(last) == "9999-12-31 23:59"
    assert moment(last) == "9999-12-31 23:59:00"
    assert moment(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01 09:00:00"
    with pytest.raises(ValueError, match="out of range in this machine's time zone"):
        iso(datetime(9999, 12, 31, 23, 59), "run_at")
