"""Argv templates: a command's ``{name}`` placeholders, substituted per argv element.

Arguments never pass through a shell, so an argument like ``"; rm -rf /"``
stays one harmless argv element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Discriminator, Tag

from jobyard.jobtypes.params import PARAM_NAME

ARG_ENV_PREFIX = "JOBYARD_ARG_"
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]|[^{}]+")


@dataclass(frozen=True)
class Placeholder:
    name: str


@dataclass(frozen=True)
class ArgTemplate:
    """One argv element: literal text and ``{name}`` placeholders."""

    segments: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, text: str) -> ArgTemplate:
        """Parse ``text``; ``{{``/``}}`` are literal braces; only a bare ``{name}`` is allowed.

        Unlike :meth:`str.format`, there is no attribute or index access
        (``{x.__class__}``, ``{x[0]}``) and no conversion or format spec.
        """
        segments: list[str | Placeholder] = []
        for token in _TOKEN.findall(text):
            if token in ("{{", "}}"):
                segments.append(token[0])
            elif token in ("{", "}"):
                raise ValueError(f"unmatched {token!r} (write {token * 2!r} for a literal brace)")
            elif token.startswith("{"):
                segments.append(_placeholder(token))
            else:
                segments.append(token)
        return cls(tuple(segments))

    @property
    def names(self) -> list[str]:
        return [seg.name for seg in self.segments if isinstance(seg, Placeholder)]

    def render(self, args: Mapping[str, Any]) -> list[str]:
        """The argv elements: an element that is exactly ``{name}`` may give none or several."""
        if len(self.segments) == 1 and isinstance(self.segments[0], Placeholder):
            value = args.get(self.segments[0].name)
            if value is None:
                return []
            return [_text(item) for item in value] if isinstance(value, list) else [_text(value)]
        return ["".join(_segment_text(seg, args) for seg in self.segments)]


def _placeholder(token: str) -> Placeholder:
    if not PARAM_NAME.fullmatch(token[1:-1]):
        raise ValueError(
            f"invalid placeholder {token!r}: write {{name}} with a param name only "
            "(no attribute, index, conversion or format spec)"
        )
    return Placeholder(token[1:-1])


def _segment_text(segment: str | Placeholder, args: Mapping[str, Any]) -> str:
    if isinstance(segment, str):
        return segment
    value = args.get(segment.name)
    if isinstance(value, list) and not any(isinstance(v, list | dict) for v in value):
        return ",".join(_text(item) for item in value)
    return _text(value)


def _text(value: Any) -> str:
    """A value as one argv element or environment value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def arg_env(args: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as ``JOBYARD_ARG_<NAME>`` variables (lists and objects as JSON)."""
    prefix = ARG_ENV_PREFIX
    return {f"{prefix}{name.upper()}": _text(v) for name, v in args.items() if v is not None}


def _valid_template(text: str) -> str:
    ArgTemplate.parse(text)
    return text


def _command_form(value: Any) -> str:
    return "~script" if isinstance(value, str) else "~argv"


Command = Annotated[
    Annotated[list[Annotated[str, AfterValidator(_valid_template)]], Tag("~argv")]
    | Annotated[str, Tag("~script")],
    Discriminator(_command_form),
]
