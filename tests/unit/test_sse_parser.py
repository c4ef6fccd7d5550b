"""The text/event-stream parser of the client, against the format's rules."""

from __future__ import annotations

import pytest

from jobyard.client.sse import SSEDecoder, SSEMessage, iter_lines, iter_sse


def parse(text: str) -> list[SSEMessage]:
    return list(iter_sse(iter_lines([text])))


def test_a_message_has_its_type_data_and_id() -> None:
    assert parse('id: 7\nevent: state\ndata: {"state": "queued"}\n\n') == [
        SSEMessage(event="state", data='{"state": "queued"}', id="7")
    ]


def test_field_order_does_not_matter_and_the_type_defaults_to_message() -> None:
    assert parse("data: x\nid: 3\n\n") == [SSEMessage(event="message", data="x", id="3")]


def test_data_lines_join_with_newlines() -> None:
    assert parse("data: one\ndata:two\ndata\ndata:  three\n\n")[0].data == "one\ntwo\n\n three"


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert parse("event:  x\ndata:a\n\n")[0] == SSEMessage(event=" x", data="a")


def test_comments_and_unknown_fields_are_ignored() -> None:
    text = ": ping\n\n: another\nfoo: bar\ndata: a\n: in the middle\n\n"
    assert parse(text) == [SSEMessage(event="message", data="a")]


def test_a_message_without_data_is_not_dispatched() -> None:
    assert parse("event: close\n\nid: 4\n\n") == []


def test_an_empty_data_field_makes_an_empty_message() -> None:
    assert parse("data\n\n") == [SSEMessage(event="message", data="")]


def test_each_message_has_only_its_own_id_while_the_decoder_keeps_the_last() -> None:
    decoder = SSEDecoder()
    messages = list(iter_sse(iter_lines(["id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"]), decoder))
    assert [m.id for m in messages] == ["1", None, ""]
    assert decoder.last_event_id == ""
    list(iter_sse(["id: 9", "data: d", ""], decoder))
    assert decoder.last_event_id == "9"


def test_an_id_with_a_null_is_ignored() -> None:
    decoder = SSEDecoder()
    assert list(iter_sse(["id: 1", "data: a", "", "id: 2\0", "data: b", ""], decoder))[1].id is None
    assert decoder.last_event_id == "1"


@pytest.mark.parametrize(("value", "expected"), [("3000", 3000), ("x", None), ("-1", None)])
def test_retry_takes_only_digits(value: str, expected: int | None) -> None:
    decoder = SSEDecoder()
    list(iter_sse([f"retry: {value}", ""], decoder))
    assert decoder.retry == expected


def test_an_unfinished_message_at_the_end_is_dropped() -> None:
    assert parse("data: a\n\ndata: b\n") == [SSEMessage(event="message", data="a")]
    assert parse("data: a\n\ndata: b") == [SSEMessage(event="message", data="a")]


def test_a_field_without_a_colon_has_an_empty_value() -> None:
    assert parse("event\ndata: x\n\n") == [SSEMessage(event="message", data="x")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_is_understood(newline: str) -> None:
    text = newline.join(["event: log", "data: a", "data: b", "", "data: c", "", ""])
    assert parse(text) == [SSEMessage(event="log", data="a\nb"), SSEMessage("message", "c")]


def test_lines_split_across_chunks_even_inside_a_crlf() -> None:
    chunks = ["da", "ta: on", "e\r", "\ndata: two\r", "\r", "\n", "", "data: x\r\n\r\n"]
    assert list(iter_lines(chunks)) == ["data: one", "data: two", "", "data: x", ""]
    assert [m.data for m in iter_sse(iter_lines(chunks))] == ["one\ntwo", "x"]


def test_only_cr_and_lf_end_lines() -> None:
    # str.splitlines() would also split at these; the format does not
    text = "data: a\u2028b\x0bc\x1cd\x85e\n\n"
    assert parse(text)[0].data == "a\u2028b\x0bc\x1cd\x85e"


def test_a_leading_byte_order_mark_is_dropped_once() -> None:
    assert list(iter_lines(["\ufeffdata: a\n", "\ufeffx\n"])) == ["data: a", "\ufeffx"]
    assert parse("\ufeffdata: a\n\n")[0].data == "a"


def test_an_event_type_does_not_leak_into_the_next_message() -> None:
    messages = parse("event: close\ndata: {}\n\ndata: next\n\n")
    assert [m.event for m in messages] == ["close", "message"]
