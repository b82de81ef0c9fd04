"""Print a rich Table so people can read it where they read it (issue 19 item 12).

- In a terminal: box-drawn, as rich draws it, when every word fits its column. When the
  console is too narrow for the table's longest words (rich would then fold "baseline" into
  "baselin/e"), each row is printed as a block of `column: value` lines instead, so no word
  is ever broken across lines.
- Not a terminal (a CI log, a pipe): no box-drawing characters, Markdown-style pipes instead.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        try:
            return Text.from_markup(cell).plain
        except Exception:  # not markup after all: shown as written
            return cell
    return str(cell)


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _frame(table: Table, *, boxed: bool = True) -> int:
    """Columns taken by padding and borders."""
    left, right = table.padding[3], table.padding[1]
    return len(table.columns) * (left + right) + (len(table.columns) + 1 if boxed else 0)


def _texts(column) -> list[str]:
    return [_plain(column.header), *(_plain(c) for c in column.cells)]


def min_width(table: Table, *, boxed: bool = True) -> int:
    """Columns needed so that no column is narrower than its longest word (header included)."""
    return sum(max(map(_longest_word, _texts(c)), default=0) for c in table.columns) + _frame(table, boxed=boxed)


def _fit(table: Table, width: int) -> None:
    """Fix each column's width so the table fits `width` and no column is narrower than its longest
    word (rich's own shrinking makes the widest columns equal and folds words when it must)."""
    mins = [max(map(_longest_word, _texts(c)), default=0) for c in table.columns]
    widths = [max((len(line) for t in _texts(c) for line in t.splitlines()), default=0) for c in table.columns]
    room = width - _frame(table)
    if sum(widths) <= room:
        return
    while sum(widths) > room:
        slack = [i for i, w in enumerate(widths) if w > mins[i]]
        if not slack:
            return
        widest = max(slack, key=lambda i: widths[i])
        widths[widest] -= 1
    for column, w in zip(table.columns, widths):
        column.width = max(w, 1)


def _stacked(console: Console, table: Table) -> None:
    """One block per row: the first column (and the arm, where there is one) as the row's
    heading, then `column: value` lines."""
    if table.title:
        console.print(Text.from_markup(str(table.title), style="bold"))
    columns = table.columns
    rows = zip(*(list(c.cells) for c in columns)) if columns else []
    for row in rows:
        n_head = 2 if len(columns) > 1 and _plain(columns[1].header) == "arm" else 1
        head = " ".join(_plain(row[i]) for i in range(n_head) if _plain(row[i]))
        console.print(Text(head or "-", style="bold"))
        for column, cell in list(zip(columns, row))[n_head:]:
            value = _plain(cell)
            if value:
                console.print(f"  {escape(_plain(column.header))}: {escape(value)}", highlight=False)
    if table.caption:
        console.print(Text.from_markup(str(table.caption), style="dim"))


def print_table(console: Console, table: Table) -> None:
    """Print `table` boxed in a terminal, with plain pipes elsewhere, stacked when too narrow."""
    boxed = console.is_terminal
    if not boxed:
        table.box = box.MARKDOWN
        table.show_edge = True
    if min_width(table, boxed=True) > console.width:
        _stacked(console, table)
        return
    _fit(table, console.width)
    console.print(table)


__all__ = ["min_width", "print_table"]
