"""Tables that fit the terminal without cutting the names other commands take.

Rich shrinks a table that is too wide by wrapping its cells and, when that is
not enough, by cutting them with an ellipsis: a job id, a type, worker or
queue name cut so could not be copied into the next command. Here each column
says what it holds: a ``key`` (a name or id: one line, never cut), ``words``
(wrapped between words only, so names in a list stay whole), ``fixed`` (one
short line: a state, a time) or ``text`` (wrapped anywhere). When even the
narrowest form is wider than the terminal, the least needed columns are left
out (``drop``: 1 goes first) before anything would be cut. A column that may
``fold`` (a job's free name) counts as no wider than :data:`FOLD_MIN` there: one
long name is folded onto more lines rather than leave columns out of every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

Kind = Literal["key", "words", "fixed", "text"]
TEXT_MIN = 6  # a text column may be wrapped down to this width
FOLD_MIN = 8  # a name longer than the terminal is folded onto lines this wide, at least


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = "text"
    drop: int = 0  # 0: always shown; else left out, lowest first, when the table is too wide
    fold: bool = False  # its long words are folded onto more lines before columns are dropped
    justify: Literal["left", "right"] = "left"


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    width: int | None = None,
    **table_options: Any,
) -> Table:
    """A table of ``rows`` (one cell a column) that fits ``width`` (the console's)."""
    from jobyard.cli.render import console

    available = width or console().width
    shown = list(range(len(columns)))
    while _frame(shown) + sum(_folded(columns[i], _cells(rows, i)) for i in shown) > available:
        droppable = [i for i in shown if columns[i].drop]
        if not droppable:
            break
        shown.remove(min(droppable, key=lambda i: columns[i].drop))
    kept = [columns[i] for i in shown]
    cells = [_cells(rows, i) for i in shown]
    widths = _widths(kept, cells, available)
    folded = [False] * len(kept)
    if _frame(kept) + sum(_narrowest(c, cs) for c, cs in zip(kept, cells, strict=True)) > available:
        widths, folded = _squeezed(kept, cells, available)
    table = Table(**table_options)
    for i, column_width, fold in zip(shown, widths, folded, strict=True):
        _add_column(table, columns[i], column_width, fold=fold)
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def _widths(columns: list[Column], cells: list[list[Any]], available: int) -> list[int | None]:
    """The width of each wrapped column when the table would be too wide (None: its own).

    Key and fixed columns keep their width; the wrapped ones share what is left,
    each at least its narrowest, the rest in proportion to what they would want.
    """
    natural = [
        _widest(column, column_cells) for column, column_cells in zip(columns, cells, strict=True)
    ]
    narrow = [_narrowest(c, column_cells) for c, column_cells in zip(columns, cells, strict=True)]
    spare = available - _frame(columns) - sum(narrow)
    if spare < 0 or _frame(columns) + sum(natural) <= available:
        return [None] * len(columns)
    wants = [
        n - m if c.kind in ("words", "text") else 0
        for c, n, m in zip(columns, natural, narrow, strict=True)
    ]
    total = sum(wants) or 1
    return [
        min(n, m + spare * want // total) if c.kind in ("words", "text") else None
        for c, n, m, want in zip(columns, natural, narrow, wants, strict=True)
    ]


def _squeezed(
    columns: list[Column], cells: list[list[Any]], available: int
) -> tuple[list[int | None], list[bool]]:
    """Widths for a table whose narrowest form is still too wide, nothing left to drop
    (a long name): the widest columns are folded onto more lines, whole, down to what
    fits, those that may ``fold`` first, so that the short ones (an id, a state) stay
    as they are. Rich, left to it, would cut every column, an id to nothing."""
    widths = [_narrowest(c, cs) for c, cs in zip(columns, cells, strict=True)]
    everyone = range(len(columns))
    folds = [i for i in everyone if columns[i].fold]
    excess = _frame(columns) + sum(widths) - available
    spare = sum(max(widths[i] - FOLD_MIN, 0) for i in folds) - excess
    widths = _whole_headers(columns, widths, spare)
    excess = _frame(columns) + sum(widths) - available
    folded = [False] * len(columns)
    for candidates in (folds, everyone):
        while excess > 0 and candidates:  # the widest column, by one (a few hundred at most)
            widest = max(candidates, key=lambda i: widths[i])
            if widths[widest] <= FOLD_MIN:
                break  # as narrow as they may be: the terminal wraps the lines
            widths[widest] -= 1
            excess -= 1
            folded[widest] = True
    return list(widths), folded


def _whole_headers(columns: list[Column], widths: list[int], spare: int) -> list[int]:
    """``widths`` with the headers of text columns whole, as far as ``spare`` (what the
    folding columns can give besides) allows: ``progress``, not ``progre`` over ``ss``."""
    widened = list(widths)
    for i, column in enumerate(columns):
        grant = max(min(cell_len(column.header) - widened[i], spare), 0)
        widened[i] += grant
        spare -= grant
    return widened


def _add_column(table: Table, column: Column, width: int | None, *, fold: bool = False) -> None:
    one_line = column.kind in ("key", "fixed") and not fold
    overflow: Literal["fold", "ellipsis"] = "fold" if column.kind == "text" or fold else "ellipsis"
    table.add_column(
        column.header, justify=column.justify, no_wrap=one_line, overflow=overflow, width=width
    )


def _cells(rows: Sequence[Sequence[Any]], index: int) -> list[Any]:
    return [row[index] for row in rows]


def _frame(columns: Sequence[Any]) -> int:
    """A border between columns and at each edge, and one space each side of a cell."""
    return 3 * len(columns) + 1


def _widest(column: Column, cells: Sequence[Any]) -> int:
    texts = [column.header, *(_plain(cell) for cell in cells)]
    return max(cell_len(line) for text in texts for line in text.splitlines() or [""])


def _folded(column: Column, cells: Sequence[Any]) -> int:
    """The narrowest a column may be made before others are left out."""
    narrowest = _narrowest(column, cells)
    return min(narrowest, FOLD_MIN) if column.fold else narrowest


def _narrowest(column: Column, cells: Sequence[Any]) -> int:
    if column.kind in ("key", "fixed"):
        return _widest(column, cells)
    texts = [column.header, *(_plain(cell) for cell in cells)]
    longest_word = max((cell_len(word) for text in texts for word in text.split()), default=1)
    return longest_word if column.kind == "words" else min(longest_word, TEXT_MIN)


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)
