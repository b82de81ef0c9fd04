"""Shared output plumbing for run commands: progress bar, table, machine outputs, gates."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.common.errors import CostLimitReached, GateFailed, NothingGraded
from harness.workflows.evaluate import Progress as RunProgress
from harness.store.db import Store

console = Console()
# soft_wrap: a line on stderr (a path, a run id) is never folded mid-word into two.
err_console = Console(stderr=True, soft_wrap=True)


@contextmanager
def progress_bar(label: str, *, quiet: bool = False, stops: list[str] | None = None) -> Iterator[RunProgress]:
    """A rich progress bar over trials (on stderr, so --json stdout stays clean). Why the run
    stopped early (--max-cost), if it did, is appended to `stops`."""
    # Off a terminal (a CI log) no bar is drawn: one plain line at the end says what happened.
    plain = not quiet and not err_console.is_terminal
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[last]}"), TimeElapsedColumn(), TextColumn("{task.fields[where]}"),
                   console=err_console, disable=quiet or plain, transient=False)
    task = bar.add_task(label, total=None, last="", where="")
    where = {"line": ""}
    counts: dict[str, int] = {}

    def on_start(total: int) -> None:
        bar.update(task, total=total)

    def on_trial(trial, outcome: str) -> None:
        counts[outcome] = counts.get(outcome, 0) + 1
        summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        bar.update(task, advance=1, last=summary)

    def on_status(line: str) -> None:
        """The executor's nodes and tasks in flight (harness.executors.base.ExecutorStatus.line)."""
        where["line"] = line
        bar.update(task, where=line)

    def on_note(line: str) -> None:
        if not quiet:
            err_console.print(line, highlight=False, markup=False)

    start = time.monotonic()
    with bar:
        yield RunProgress(on_start=on_start, on_trial=on_trial,
                          on_stop=(stops.append if stops is not None else lambda reason: None),
                          on_status=on_status, on_note=on_note)
    if plain:
        summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing to do"
        err_console.print(f"{label}: {sum(counts.values())} done, {summary} ({time.monotonic() - start:.1f} s)"
                          + (f"; {where['line']}" if where["line"].startswith("ray") else ""), highlight=False, markup=False)


def emit(text: str, target: str | None, *, what: str) -> None:
    """`text` to stdout (target "-") or to the file `target`, with a line on stderr saying where."""
    if target is None:
        return
    if target == "-":
        print(text, end="" if text.endswith("\n") else "\n")
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    err_console.print(f"{what} written to {path}", highlight=False)


def report_and_gate(store: Store, run_id: str, *, as_json: str | bool | None, junit: Path | None, html: Path | None,
                    fail_under: float | None, min_lift: float | None, trajectories: bool = False,
                    csv: str | None = None, per_case: bool = False, stopped: str | None = None,
                    outcome: bool = False) -> None:
    """Print the table (or JSON / CSV on stdout), write files, then apply the gates (exit 1 via
    GateFailed). `as_json` / `csv`: "-" (or True) prints to stdout instead of the table, a path writes
    that file and the table is still printed. `per_case`: one row per case after the tables.
    `outcome` (eval, rescore): exit 5 when `stopped` says --max-cost stopped the run, 4 when no
    trial could be graded, before the gates (README "Exit codes")."""
    from harness.report import summary as summary_mod
    from harness.report.from_store import report_run

    as_json = "-" if as_json is True else (as_json or None)
    run = report_run(store, run_id)
    if as_json is not None:
        from harness.report.json_out import to_json

        emit(json.dumps(to_json(run), indent=2, default=str), as_json, what="JSON")
    if csv is not None:
        from harness.report.csv_out import trials_csv

        emit(trials_csv(run), csv, what="CSV")
    if "-" not in (as_json, csv):
        from harness.report.terminal import render_terminal

        render_terminal(run, console, trajectories=trajectories)
        if per_case:
            from harness.report.cases_view import case_table
            from harness.report.fit import print_table

            inputs = {c.get("id", ""): c.get("input", "") for c in store.get_run(run.run_id).cases}
            print_table(console, case_table(run, inputs))
    if junit:
        from harness.report.junit import write_junit

        write_junit(run, junit)
        err_console.print(f"JUnit written to {junit}")
    if html:
        from harness.common.paths import data_dir
        from harness.report.html import write_html
        from harness.report.model import attach_artifacts

        write_html(attach_artifacts(run, data_dir()), html)
        err_console.print(f"HTML report written to {html}")
    if outcome and stopped:
        raise CostLimitReached(f"run {run_id} stopped early: {stopped}; resume with: kernelgrade eval --resume {run_id}")
    if outcome and run.trials and not any(t.verdict in ("pass", "fail") for t in run.trials) \
            and any(t.verdict == "error" for t in run.trials):
        raise NothingGraded(f"run {run_id}: no trial could be graded ({sum(t.verdict == 'error' for t in run.trials)} "
                            "errored; see the errors above)")
    if fail_under is not None or min_lift is not None:
        failed = summary_mod.check_gates(summary_mod.summarize(run), fail_under, min_lift)
        if failed:
            raise GateFailed("; ".join(failed))
