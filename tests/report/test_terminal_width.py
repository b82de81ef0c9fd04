"""Terminal output where users read it (issue 19 item 12): at 80 columns no word is broken
across lines ("baselin/e"), and off a terminal (a CI log) there is no box drawing.
The run is tests/report/test_report.py's hand-built FIXTURE."""

from __future__ import annotations

import io
import re

from rich.console import Console
from rich.table import Table

from harness.report.compare import compare_runs
from harness.report.fit import min_width, print_table
from harness.report.terminal import render_compare, render_terminal
from tests.report.test_report import fixture_run

BOX = re.compile(r"[\u2500-\u257f]")  # rich's box-drawing characters


def _render(width: int, *, terminal: bool, compare: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None, highlight=False)
    run = fixture_run()
    if compare:
        render_compare(compare_runs(run, run), console)
    else:
        render_terminal(run, console)
    return out.getvalue()


def _tokens(text: str) -> set[str]:
    words = BOX.sub(" ", text.replace("|", " ")).split()
    return {t.rstrip(":") for t in words if set(t) != {"-"}}  # Markdown rules are not words


def test_no_word_is_broken_at_80_columns() -> None:
    for compare in (False, True):
        wide = _tokens(_render(400, terminal=True, compare=compare))
        for terminal in (True, False):
            narrow = _render(80, terminal=terminal, compare=compare)
            assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
            broken = _tokens(narrow) - wide
            assert not broken, (sorted(broken), narrow)
            for word in ("baseline", "with_skill", "incomplete", "assertions", "McNemar"):
                assert word in narrow or compare


def test_a_ci_log_has_no_box_drawing_and_a_terminal_keeps_it() -> None:
    assert not BOX.search(_render(120, terminal=False))
    assert "| m1" in _render(250, terminal=False)  # plain pipes instead
    assert BOX.search(_render(250, terminal=True))


def test_a_table_that_fits_is_drawn_as_a_table_else_stacked() -> None:
    table = Table(title="t")
    for col in ("model", "arm", "pass rate"):
        table.add_column(col)
    table.add_row("claude-sonnet-4-5", "with_skill", "100% (8/8)")
    assert min_width(table) == len("claude-sonnet-4-5") + len("with_skill") + len("(8/8)") + 3 * 2 + 4
    out = io.StringIO()
    print_table(Console(file=out, width=80, force_terminal=True, color_system=None), table)
    assert "┃" in out.getvalue() or "│" in out.getvalue()
    out = io.StringIO()
    print_table(Console(file=out, width=30, force_terminal=True, color_system=None), table)
    assert out.getvalue().splitlines()[1:3] == ["claude-sonnet-4-5 with_skill", "  pass rate: 100% (8/8)"]
