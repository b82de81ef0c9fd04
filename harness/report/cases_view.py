"""One row per case (`eval -v`, `runs show -v`): upskill's verbose view, with kernelgrade's counts.

upskill -v prints, per case, OK / FAIL for the baseline and with the skill of its one run; here a
case may have several runs, so each cell is "passed/completed" over that case's trials (errors and
incomplete trials are counted apart, as in every other table)."""

from __future__ import annotations

from collections import defaultdict

from rich.table import Table

from harness.report.model import ARMS, ReportRun

PREVIEW = 40
"""Characters of a case's input shown beside its id (upskill shows 40)."""


def _cell(verdicts: list[str]) -> str:
    done = [v for v in verdicts if v in ("pass", "fail")]
    text = f"{sum(v == 'pass' for v in done)}/{len(done)}" if done else "-"
    other = len(verdicts) - len(done)
    return text + (f" (+{other} not graded)" if other else "")


def case_table(run: ReportRun, inputs: dict[str, str] | None = None) -> Table:
    """Rows: case (with the start of its input when known); columns: each model and arm."""
    groups = [(m, a) for m in run.models for a in ARMS if any(t.model == m and t.arm == a for t in run.trials)]
    table = Table(title="Per case: passed/completed trials", caption="completed = pass or fail; "
                  "errors and incomplete trials are not graded")
    table.add_column("case")
    for model, arm in groups:
        table.add_column(f"{model} {arm}")
    cells: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for t in run.trials:
        cells[(t.case_id, t.model, t.arm)].append(t.verdict)
    for case_id in run.cases:
        text = " ".join((inputs or {}).get(case_id, "").split())
        label = case_id + (f" {text[:PREVIEW]}" if text else "")
        table.add_row(label, *(_cell(cells[(case_id, m, a)]) for m, a in groups))
    return table


__all__ = ["case_table"]
