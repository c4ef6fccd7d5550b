"""How the UI's filters show values."""

from __future__ import annotations

from jobyard.ui.render import pretty


def test_arguments_show_their_text_as_written_but_for_what_would_reorder_or_hide_it() -> None:
    shown = pretty({"city": "Zürich 東京 😀", "trick": "ab\u202ecd\u200bef", "bell": "\x07"})
    assert '"city": "Zürich 東京 😀"' in shown
    assert '"trick": "ab\\u202ecd\\u200bef"' in shown
    assert '"bell": "\\u0007"' in shown
