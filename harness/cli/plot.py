"""`kernelgrade plot RUN`: PNG charts of a stored run."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("plot")(plot_cmd)


def plot_cmd(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
             out: Path = typer.Option(Path("."), "--out", "-o", help="Folder for the PNG files.")) -> None:
    """PNG charts of a run: pass rates and speedups.

    Pass rate baseline vs with-skill per model (with 95% intervals) and the speedup
    distribution (CPU and GPU apart)."""
    from harness.report.plots import write_plots
    from harness.report.from_store import report_run
    from harness.store.db import Store

    out.mkdir(parents=True, exist_ok=True)
    for path in write_plots(report_run(Store(), run_id), out):
        print(path)
