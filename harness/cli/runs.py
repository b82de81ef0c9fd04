"""`kernelgrade runs`: list, show, compare, export, import and delete stored runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

from harness.cli.options import CSV_HELP, JSON_HELP
from harness.common.errors import UserError

if TYPE_CHECKING:
    from harness.store.db import Store

runs_app = typer.Typer(help="Stored runs: list (default), show, compare, export, import, delete.",
                       invoke_without_command=True, no_args_is_help=False)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_list(ctx: typer.Context,
              skill: str = typer.Option(None, "--skill", help="Only runs of this skill (its name)."),
              model: str = typer.Option(None, "--model", "-m", help="Only runs that used this model (as typed)."),
              since: str = typer.Option(None, "--since", help="Only runs created since a date (2026-11-30), a time "
                                        "(2026-11-30T12:00, UTC unless given) or an age (90m, 24h, 7d, 2w)."),
              as_json: str = typer.Option(None, "--json", help="The list as JSON on stdout; --json FILE.json writes it."),
              as_csv: str = typer.Option(None, "--csv", help="The list as CSV, one row per run, on stdout; "
                                         "--csv FILE.csv writes it.")) -> None:
    """List stored runs, newest first (filtered by --skill, --model, --since)."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.cli.render import console, emit
    from harness.report.csv_out import runs_csv
    from harness.report.fit import print_table
    from harness.report.run_list import filter_rows, run_rows
    from harness.store.db import Store

    rows = filter_rows(run_rows(Store()), skill=skill, model=model, since=since)
    emit(json.dumps(rows, indent=2, default=str), as_json, what="JSON")
    emit(runs_csv(rows), as_csv, what="CSV")
    if "-" in (as_json, as_csv):
        return
    table = Table(title="runs")
    for col in ("id", "kind", "mode", "created", "status", "skill", "models", "trials", "answered", "errors"):
        table.add_column(col)
    for r in rows:
        kind = r["kind"] + (f" ({r['source']})" if r["source"] != "kernelgrade" else "")
        table.add_row(r["id"], kind, r["mode"], r["created"], r["status"], r["skill"], r["models"],
                      str(r["trials"]), str(r["answered"]), str(r["errors"]))
    if rows:
        print_table(console, table)
    else:
        console.print("no runs match" if (skill or model or since) else "no runs yet")


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
              as_json: str = typer.Option(None, "--json", help=JSON_HELP),
              as_csv: str = typer.Option(None, "--csv", help=CSV_HELP),
              junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per trial)."),
              html: Path = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
              trajectories: bool = typer.Option(False, "--trajectories", "-v", "--verbose",
                                                help="One row per case after the tables; agent runs: also every "
                                                     "trajectory turn by turn (messages, tool calls, results, "
                                                     "check findings).")) -> None:
    """Show one run's results table (or JSON / CSV / JUnit / HTML).

    A generate run has no trials of its own: it is shown as its teacher calls and the
    eval runs it made (each shown in full with `runs show` on its id)."""
    from harness.cli.render import report_and_gate
    from harness.store.db import Store

    store = Store()
    run = store.get_run(run_id)
    if run.kind == "generate":
        _show_generate(store, run.id, as_json=as_json, files=[f for f in (junit, html, as_csv) if f])
        return
    report_and_gate(store, run.id, as_json=as_json, csv=as_csv, junit=junit, html=html, fail_under=None,
                    min_lift=None, trajectories=trajectories, per_case=trajectories)


def _show_generate(store: Store, run_id: str, *, as_json: str | None, files: list) -> None:
    from harness.cli.render import console, emit
    from harness.report.from_store import generate_view
    from harness.report.terminal import render_generate

    view = generate_view(store, run_id)
    if files:
        holdout = next((r.run_id for r in view.eval_runs if r.phase == "holdout"), "RUN_ID")
        raise UserError(f"run {run_id}: a generate run; --junit / --html / --csv report trials, which are in its "
                        f"eval runs (e.g. kernelgrade runs show {holdout} --html F)")
    emit(view.model_dump_json(indent=2), as_json, what="JSON")
    if as_json != "-":
        render_generate(view, console)


@runs_app.command("compare")
def runs_compare(a: str = typer.Argument(..., help="Run A (the reference side)."),
                 b: str = typer.Argument(..., help="Run B (compared against A)."),
                 as_json: str = typer.Option(None, "--json", help="The comparison as JSON on stdout; "
                                             "--json FILE.json writes it."),
                 min_lift: float = typer.Option(None, "--min-lift", help="Exit 1 if B - A is below this.")) -> None:
    """Compare the same cases across two runs (B against A) with the paired test.

    A run imported from upskill (`runs import RUNS_DIR`) is compared per run instead: a run
    passes when every case of it passed (upskill's rule), unpaired."""
    from harness.cli.render import console, emit
    from harness.common.errors import GateFailed
    from harness.report.compare import compare_runs
    from harness.report.from_store import report_run
    from harness.report.terminal import render_compare
    from harness.store.db import Store

    store = Store()
    result = compare_runs(report_run(store, a), report_run(store, b))
    emit(result.model_dump_json(indent=2), as_json, what="JSON")
    if as_json != "-":
        render_compare(result, console)
    if min_lift is not None:
        low = [r for r in result.rows if r.lift is not None and r.lift < min_lift]
        if low:
            raise GateFailed(f"lift below {min_lift} for: " + ", ".join(f"{r.model}/{r.arm}" for r in low))


@runs_app.command("export")
def runs_export(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
                output: Path = typer.Option(..., "--output", "-o", help="tar: the F.tar to write; inspect: the "
                                            "folder for the .eval logs."),
                fmt: Literal["tar", "inspect"] = typer.Option(
                    "tar", "--format", help="tar: the run with its artifacts, for `runs import` (e.g. on an H100 "
                    "node); inspect: inspect_ai eval logs (one per model and arm) that `inspect view` opens "
                    "(needs the [inspect] extra).")) -> None:
    """Pack a run into a tar file (e.g. to rescore on an H100 node), or write inspect_ai logs.

    tar: the run's rows and artifacts. A generate run is packed with its teacher calls, its steps and the eval runs it made."""
    if fmt == "inspect":
        from harness.workflows.transfer import export_inspect

        for path in export_inspect(run_id, output):
            print(f"wrote {path}")
        return
    from harness.workflows.transfer import export_run

    run, run_ids = export_run(run_id, output)
    extra = f" with its {len(run_ids) - 1} eval run(s) and teacher calls" if run.kind == "generate" else ""
    print(f"exported {run.id}{extra} to {output}")


@runs_app.command("import")
def runs_import(archive: Path = typer.Argument(..., help="A tar file from `runs export`, or upskill's run logs: "
                                               "a runs/ folder, one runs/<batch>/ or one run_N/ folder.")) -> None:
    """Import runs from `runs export` tar files, or upskill's run logs.

    Trial ids are renumbered. Each upskill batch becomes a run whose trials are upskill runs
    (see `runs show`)."""
    if archive.is_dir():
        from harness.workflows.upskill_import import import_upskill

        ids = import_upskill(archive)
        print(f"imported {', '.join(ids) if ids else 'nothing (no finished upskill run)'}")
        return
    from harness.workflows.transfer import import_runs

    print(f"imported {', '.join(import_runs(archive))}")


@runs_app.command("delete")
def runs_delete(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough).")) -> None:
    """Delete a run with its trials, grades and artifacts.

    A generate run goes with its teacher calls and the eval runs it made."""
    from harness.workflows.transfer import delete_run

    print(f"deleted {', '.join(delete_run(run_id))}")
