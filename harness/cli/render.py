"""Shared output plumbing for run commands: progress bar, table, machine outputs, gates."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.common.errors import GateFailed
from harness.workflows.evaluate import Progress as RunProgress
from harness.store.db import Store

console = Console()
err_console = Console(stderr=True)


@contextmanager
def progress_bar(label: str, *, quiet: bool = False) -> Iterator[RunProgress]:
    """A rich progress bar over trials (on stderr, so --json stdout stays clean)."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                   console=err_console, disable=quiet, transient=False)
    task = bar.add_task(label, total=None, last="")
    counts: dict[str, int] = {}

    def on_start(total: int) -> None:
        bar.update(task, total=total)

    def on_trial(trial, outcome: str) -> None:
        counts[outcome] = counts.get(outcome, 0) + 1
        summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        bar.update(task, advance=1, last=summary)

    with bar:
        yield RunProgress(on_start=on_start, on_trial=on_trial)


def report_and_gate(store: Store, run_id: str, *, as_json: bool, junit: Path | None, html: Path | None,
                    fail_under: float | None, min_lift: float | None, trajectories: bool = False) -> None:
    """Print the table (or JSON), write files, then apply the gates (exit 1 via GateFailed)."""
    from harness.report import summary as summary_mod
    from harness.report.from_store import report_run

    run = report_run(store, run_id)
    if as_json:
        from harness.report.json_out import to_json

        print(json.dumps(to_json(run), indent=2, default=str))
    else:
        from harness.report.terminal import render_terminal

        render_terminal(run, console, trajectories=trajectories)
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
    if fail_under is not None or min_lift is not None:
        failed = summary_mod.check_gates(summary_mod.summarize(run), fail_under, min_lift)
        if failed:
            raise GateFailed("; ".join(failed))
