"""`kernelgrade rescore`: grade stored answers again with today's checks."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("rescore")(rescore_cmd)


def rescore_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    level: str = typer.Option("auto", "--level", help="auto | text | compile | run"),
    device: str = typer.Option("cuda", "--device", help="cuda | cpu"),
    sandbox: str = typer.Option("auto", "--sandbox"),
    as_json: bool = typer.Option(False, "--json"),
    junit: Path = typer.Option(None, "--junit"),
    html: Path = typer.Option(None, "--html"),
    fail_under: float = typer.Option(None, "--fail-under"),
    min_lift: float = typer.Option(None, "--min-lift"),
) -> None:
    """Re-grade every answered trial of a run (no model calls), e.g. on an H100 node after
    `runs import`. New grades are added; the old ones stay in the database."""
    from harness.cli.render import progress_bar, report_and_gate
    from harness.workflows.evaluate import rescore
    from harness.store.db import Store

    store = Store()
    run_id = store.get_run(run_id).id
    with progress_bar("rescoring", quiet=as_json) as progress:
        rescore(run_id, store, level=level, device=device, sandbox=sandbox, progress=progress)
    report_and_gate(store, run_id, as_json=as_json, junit=junit, html=html,
                    fail_under=fail_under, min_lift=min_lift)
