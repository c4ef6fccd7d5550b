"""The stdout line protocol, line splitting, and the end-of-job marker scan."""

from __future__ import annotations

import pytest

from jobyard.runner.handle import MarkerScan
from jobyard.runner.protocol import MAX_LINE, LineSplitter, Metric, Progress, parse_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("##jobyard progress 0.42 copying files", Progress(0.42, "copying files")),
        ("##jobyard progress 0.42", Progress(0.42, None)),
        ("##jobyard progress 1", Progress(1.0, None)),
        ("##jobyard progress 7 too far", Progress(1.0, "too far")),
        ("##jobyard progress -3", Progress(0.0, None)),
        ("##jobyard progress 0.5   spaced   out  ", Progress(0.5, "spaced   out")),
        ("##jobyard metric rows 1200", Metric("rows", 1200.0)),
        ("##jobyard metric bytes 1.5e9", Metric("bytes", 1.5e9)),
        ("##jobyard metric delta -2", Metric("delta", -2.0)),
    ],
)
def test_protocol_lines(line: str, expected: Progress | Metric) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "plain output",
        "",
        "##jobyard",
        "##jobyard ",
        "##jobyard progress",
        "##jobyard progress half done",
        "##jobyard progress nan",
        "##jobyard progress inf",
        "##jobyard metric rows",
        "##jobyard metric rows many",
        "##jobyard metric rows 1 2",
        "##jobyard metric rows nan",
        "##jobyard status ok",
        "##jobyardprogress 0.5",
        " ##jobyard progress 0.5",
        "##JOBYARD progress 0.5",
    ],
)
def test_other_lines_are_logged(line: str) -> None:
    assert parse_line(line) is None


def test_splitter_keeps_an_unfinished_line_for_later() -> None:
    split = LineSplitter()
    assert split.feed(b"one\ntw") == ["one"]
    assert split.feed(b"o\r\nthree\n\nfo") == ["two", "three", ""]
    assert split.flush() == ["fo"]
    assert split.flush() == []


def test_splitter_replaces_invalid_utf8() -> None:
    assert LineSplitter().feed("é\xff\n".encode("latin-1")) == ["\ufffd\ufffd"]
    assert LineSplitter().feed("grüße\n".encode()) == ["grüße"]


def test_splitter_replaces_nul_which_postgresql_cannot_store() -> None:
    split = LineSplitter()
    assert split.feed(b"a\x00b\n##jobyard progress 0.5 x\x00y\n\x00") == [
        "a\ufffdb",
        "##jobyard progress 0.5 x\ufffdy",
    ]
    assert split.flush() == ["\ufffd"]


def test_splitter_cuts_long_lines_at_64_kib() -> None:
    split = LineSplitter()
    lines = split.feed(b"x" * (2 * MAX_LINE + 10) + b"\nnext\n")
    assert [len(line) for line in lines] == [MAX_LINE, MAX_LINE, 10, 4]
    assert LineSplitter().feed(b"y" * MAX_LINE + b"\n") == ["y" * MAX_LINE]


def test_splitter_does_not_cut_a_character_in_two() -> None:
    data = ("a" + "€" * MAX_LINE).encode()  # "€" is 3 bytes
    lines = LineSplitter().feed(data + b"\n")
    assert "".join(lines) == data.decode()
    assert all(len(line.encode()) <= MAX_LINE for line in lines)
    assert "\ufffd" not in "".join(lines)


def test_marker_scan_finds_the_marker_across_reads() -> None:
    scan = MarkerScan()
    scan.start(b"\x1eEND\n")
    assert scan.feed(b"job output\n\x1eE") == (b"job output\n", None)
    assert scan.feed(b"N") == (b"", None)
    assert scan.feed(b"D\nafter") == (b"", b"after")
    assert scan.marker == b""


def test_marker_scan_releases_a_false_start() -> None:
    scan = MarkerScan()
    scan.start(b"\x1eEND\n")
    assert scan.feed(b"a\x1eE") == (b"a", None)
    assert scan.feed(b"X") == (b"\x1eEX", None)
    assert scan.feed(b"partial \x1eEN") == (b"partial ", None)
    assert scan.flush() == b"\x1eEN"
