"""What the edge refuses before a route runs: text, numbers and trees no database stores."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from jobyard.api.streams import BadEventId, header_resume
from jobyard.storable import MAX_DEPTH, problems
from jobyard.text import text_problem


@pytest.mark.parametrize(
    "text", ["", "plain", "été", "\U0001f680 emoji", "tab\tand newline\n", "\ufffd"]
)
def test_storable_text(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a\x00b", "NUL"),
        ("\x00", "NUL"),
        ("\ud800", "lone surrogate"),
        ("ok \udfff", "lone surrogate"),
        ("\ude00\ud83d", "lone surrogate"),  # a pair in the wrong order is two lone halves
    ],
)
def test_unstorable_text(text: str, why: str) -> None:
    assert why in (text_problem(text) or "")


def test_a_tree_of_good_values_has_no_problem() -> None:
    tree = {"a": [1, -(2**63), 2**63 - 1, 1.5, True, None, "x", {"b": {"c": []}}]}
    assert list(problems(tree)) == []


def test_every_bad_value_is_named_by_its_path_in_document_order() -> None:
    tree = json.loads(
        '{"args": {"n": Infinity, "list": [1, NaN, {"s": "a\\u0000"}], "\\ud800": 2},'
        ' "jobs": [{"depends_on": [{"job": 9223372036854775808}]}], "low": -9223372036854775809}'
    )
    assert [field for field, _ in problems(tree)] == [
        "args.n",
        "args.list.1",
        "args.list.2.s",
        "args.\\ud800",
        "jobs.0.depends_on.0.job",
        "low",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.inf, "finite"),
        (-math.inf, "finite"),
        (math.nan, "finite"),
        (2**63, "64 bits"),
        (-(2**63) - 1, "64 bits"),
        ("\x00", "NUL"),
    ],
)
def test_a_bad_value_at_the_top_is_named_by_the_given_path(value: Any, message: str) -> None:
    [(field, why)] = problems(value, "body")
    assert field == "body"
    assert message in why


def test_nesting_is_refused_past_the_limit_without_recursion() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):  # far beyond the interpreter's recursion limit
        deep = [deep]
    [(field, why)] = problems(deep)
    assert field == ".".join(["0"] * MAX_DEPTH)
    assert "nested deeper" in why
    shallow: Any = "leaf"
    for _ in range(MAX_DEPTH):
        shallow = {"a": shallow}
    assert list(problems(shallow)) == []


@pytest.mark.parametrize(
    ("header", "event_id"),
    [(None, None), ("0", 0), ("42", 42), (" 7 ", 7), ("0009", 9), (str(2**63 - 1), 2**63 - 1)],
)
def test_a_last_event_id_is_ascii_digits_within_64_bits(header: str | None, event_id: int) -> None:
    assert header_resume(header) == event_id


@pytest.mark.parametrize(
    "header", ["", "x", "-1", "1.5", "\u00b2", "1\u00b3", "\u0663", str(2**63), "7" * 5000]
)
def test_any_other_last_event_id_is_a_bad_request(header: str) -> None:
    with pytest.raises(BadEventId, match="Last-Event-ID must be an event id"):
        header_resume(header)
