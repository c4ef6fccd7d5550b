"""The did-you-mean of every error message about a misspelt name."""

from __future__ import annotations

import pytest

from jobyard.spelling import closest, did_you_mean, unknown_key

KEYS = ("command", "python", "params", "queue")


@pytest.mark.parametrize(
    ("name", "guess"),
    [
        ("comand", "command"),
        ("pyhton", "python"),
        ("queue", "queue"),  # a known name is its own closest
        ("colour", None),  # nothing is close enough to be a misspelling
        ("", None),
    ],
)
def test_closest_is_the_likeliest_misspelling_or_none(name: str, guess: str | None) -> None:
    assert closest(name, KEYS) == guess


def test_closest_takes_any_iterable_and_breaks_ties_by_name() -> None:
    # the same score: the greater name, whatever the order (a set's is not fixed)
    assert closest("node_c", {"node_a", "node_b"}) == "node_b"
    assert closest("node_c", iter(["node_b", "node_a"])) == "node_b"
    assert closest("x", []) is None


def test_did_you_mean_names_the_closest() -> None:
    assert did_you_mean("comand", KEYS) == "; did you mean 'command'?"
    assert did_you_mean("its", ["it's"]) == '; did you mean "it\'s"?'  # quoted as repr quotes


def test_without_a_close_name_it_is_nothing_or_what_the_caller_gives() -> None:
    assert did_you_mean("colour", KEYS) == ""
    assert did_you_mean("colour", KEYS, " (allowed: command, …)") == " (allowed: command, …)"
    assert did_you_mean("comand", KEYS, " (allowed: …)") == "; did you mean 'command'?"


def test_an_unknown_key_is_said_with_its_likely_meaning_or_else_the_keys_allowed() -> None:
    assert unknown_key("comand", KEYS) == "unknown key; did you mean 'command'?"
    assert unknown_key("colour", KEYS) == "unknown key (allowed: command, python, params, queue)"


@pytest.mark.parametrize("name", [5, None, 1.5, b"comand", ["comand"]])
def test_a_name_that_is_not_text_is_like_nothing(name: object) -> None:
    assert closest(name, KEYS) is None  # type: ignore[arg-type]
    assert did_you_mean(name, KEYS, " (allowed: …)") == " (allowed: …)"  # type: ignore[arg-type]


def test_what_is_known_but_not_text_is_passed_over() -> None:
    assert closest("comand", [5, None, b"command", "command"]) == "command"  # type: ignore[list-item]
    assert closest("comand", [5, None]) is None  # type: ignore[list-item]
