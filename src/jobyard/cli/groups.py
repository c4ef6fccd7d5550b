"""Command groups that list when called bare and show when given a name.

``jobyard types`` lists the types and ``jobyard types export`` shows one, as
they did before ``types`` had subcommands (``add``, ``edit``, ``rm``); the same
shape serves ``queues`` and ``schedules``. A first word that is an option
(``jobyard types --json``) goes to ``list``; a first word that is no
subcommand goes to ``show``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

LIST = "list"
SHOW = "show"


class ListOrShowGroup(TyperGroup):
    """A group whose bare form runs ``list`` and whose unknown first word runs ``show``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._routed(args, ctx.resilient_parsing))

    def _routed(self, args: list[str], completing: bool) -> list[str]:
        if not args:
            # While completing, stay on the group so that its subcommands are offered.
            return args if completing else [LIST]
        first = args[0]
        if first.startswith("-"):
            return args if first in ("--help", "-h") else [LIST, *args]
        if first not in self.commands and SHOW in self.commands:
            return [SHOW, *args]
        return args

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """The subcommands, and the names ``show`` would complete (types, queues…)."""
        found = super().shell_complete(ctx, incomplete)
        show = self.commands.get(SHOW)
        arguments = [p for p in show.params if p.param_type_name == "argument"] if show else []
        if arguments and not incomplete.startswith("-"):
            found += arguments[0].shell_complete(ctx, incomplete)
        return found


def group(help_text: str) -> typer.Typer:
    """A Typer app of the list-or-show shape."""
    return typer.Typer(help=help_text, cls=ListOrShowGroup, no_args_is_help=False)
