"""`kernelgrade runs`: list, show, compare, export and import stored runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from harness.common.errors import UserError

if TYPE_CHECKING:
    from harness.store.db import Store

runs_app = typer.Typer(help="Stored runs: list (default), show, compare, export, import.",
                       invoke_without_command=True, no_args_is_help=False)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON on stdout.")) -> None:
    """List stored runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.cli.render import console
    from harness.store.db import Store

    rows = Store().list_runs()
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="runs")
    for col in ("id", "kind", "mode", "created", "status", "models", "trials", "answered", "errors"):
        table.add_column(col)
    for r in rows:
        models = r["config"].get("models") or r["config"].get("students") or []  # generate: its students
        mode = r["config"].get("mode") or ("agent" if r["config"].get("agent") else "one-shot")
        table.add_row(r["id"], r["kind"], mode, r["created"], r["status"], ", ".join(models),
                      str(r["trials"]), str(r["answered"] or 0), str(r["errors"] or 0))
    console.print(table if rows else "no runs yet")


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
              as_json: bool = typer.Option(False, "--json"),
              junit: Path = typer.Option(None, "--junit"),
              html: Path = typer.Option(None, "--html"),
              trajectories: bool = typer.Option(False, "--trajectories", "-v", "--verbose",
                                                help="Agent runs: every trajectory turn by turn (messages, tool "
                                                     "calls, results, check findings) after the tables.")) -> None:
    """Show one run's results table (or JSON / JUnit / HTML).

    A generate run has no trials of its own: it is shown as its teacher calls and the
    eval runs it made (each shown in full with `runs show` on its id)."""
    from harness.cli.render import report_and_gate
    from harness.store.db import Store

    store = Store()
    run = store.get_run(run_id)
    if run.kind == "generate":
        _show_generate(store, run.id, as_json=as_json, files=[f for f in (junit, html) if f])
        return
    report_and_gate(store, run.id, as_json=as_json, junit=junit, html=html, fail_under=None, min_lift=None,
                    trajectories=trajectories)


def _show_generate(store: Store, run_id: str, *, as_json: bool, files: list[Path]) -> None:
    from harness.cli.render import console
    from harness.report.from_store import generate_view
    from harness.report.terminal import render_generate

    view = generate_view(store, run_id)
    if files:
        holdout = next((r.run_id for r in view.eval_runs if r.phase == "holdout"), "RUN_ID")
        raise UserError(f"run {run_id}: a generate run; --junit / --html report trials, which are in its "
                        f"eval runs (e.g. kernelgrade runs show {holdout} --html F)")
    if as_json:
        print(view.model_dump_json(indent=2))
    else:
        render_generate(view, console)


@runs_app.command("compare")
def runs_compare(a: str, b: str, as_json: bool = typer.Option(False, "--json"),
                 min_lift: float = typer.Option(None, "--min-lift", help="Exit 1 if B - A is below this.")) -> None:
    """Compare the same cases across two runs (B against A) with the paired test."""
    from harness.cli.render import console
    from harness.common.errors import GateFailed
    from harness.report.compare import compare_runs
    from harness.report.from_store import report_run
    from harness.report.terminal import render_compare
    from harness.store.db import Store

    store = Store()
    result = compare_runs(report_run(store, a), report_run(store, b))
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        render_compare(result, console)
    if min_lift is not None:
        low = [r for r in result.rows if r.lift is not None and r.lift < min_lift]
        if low:
            raise GateFailed(f"lift below {min_lift} for: " + ", ".join(f"{r.model}/{r.arm}" for r in low))


@runs_app.command("export")
def runs_export(run_id: str, output: Path = typer.Option(..., "--output", "-o", help="F.tar to write.")) -> None:
    """Pack a run (its rows and artifacts) into a tar file, e.g. to rescore it on an H100 node.

    A generate run is packed with its teacher calls, its steps and the eval runs it made."""
    from harness.workflows.transfer import export_run

    run, run_ids = export_run(run_id, output)
    extra = f" with its {len(run_ids) - 1} eval run(s) and teacher calls" if run.kind == "generate" else ""
    print(f"exported {run.id}{extra} to {output}")


@runs_app.command("import")
def runs_import(archive: Path) -> None:
    """Import runs exported with `runs export` (trial ids are renumbered)."""
    from harness.workflows.transfer import import_runs

    print(f"imported {', '.join(import_runs(archive))}")
