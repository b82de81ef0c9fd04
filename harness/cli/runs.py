"""`kernelgrade runs`: list, show, compare, export, import and delete stored runs."""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

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


MetricChoice = Literal["success", "tokens"]


@runs_app.callback()
def runs_list(ctx: typer.Context,
              runs_dir: Path = typer.Option(None, "--dir", "-d", help="List the runs of an upskill runs folder "
                                            "(upskill's `runs -d`; its batches, or one batch) instead of the store. "
                                            "Read into a scratch store for this listing only; `runs import DIR` "
                                            "keeps them."),
              skill: list[str] = typer.Option(None, "--skill", "-s", help="Only runs of this skill (its name); "
                                              "repeat for several (upskill's -s)."),
              model: list[str] = typer.Option(None, "--model", "-m", help="Only runs that used this model (as "
                                              "typed); repeat for several (upskill's -m)."),
              since: str = typer.Option(None, "--since", help="Only runs created since a date (2026-11-30), a time "
                                        "(2026-11-30T12:00, UTC unless given) or an age (90m, 24h, 7d, 2w)."),
              metric: MetricChoice = typer.Option(None, "--metric", help="Add upskill's figure, baseline -> with "
                                                  "skill, and sort by it: success = pass rate per trial (an imported "
                                                  "upskill run: per run), highest with-skill rate first; tokens = "
                                                  "input + output tokens per answered trial, fewest first. Default: "
                                                  "neither, newest first (upskill's default is success)."),
              as_json: str = typer.Option(None, "--json", help="The list as JSON on stdout; --json FILE.json writes it."),
              as_csv: str = typer.Option(None, "--csv", help="The list as CSV, one row per run, on stdout; "
                                         "--csv FILE.csv writes it.")) -> None:
    """List stored runs, newest first (filtered by --skill, --model, --since; -d: an upskill runs folder)."""
    if ctx.invoked_subcommand is not None:
        if runs_dir is not None:
            raise UserError(f"runs -d lists an upskill runs folder; to {ctx.invoked_subcommand} its runs, import "
                            f"them first: kernelgrade runs import {runs_dir}")
        return
    from harness.store.db import Store

    if runs_dir is None:
        _list(Store(), skill=skill, model=model, since=since, metric=metric, as_json=as_json, as_csv=as_csv)
        return
    with _scratch_store(runs_dir) as store:
        _list(store, skill=skill, model=model, since=since, metric=metric, as_json=as_json, as_csv=as_csv,
              title=f"upskill runs in {runs_dir} (not imported)")


@contextmanager
def _scratch_store(runs_dir: Path) -> Iterator[Store]:
    """upskill's logs under `runs_dir`, imported into a store in a temporary folder that is removed
    afterwards: the real store is never opened."""
    from harness.store.db import Store
    from harness.workflows.upskill_import import import_upskill, is_upskill_logs

    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir}: no such folder (runs -d takes an upskill runs folder)")
    if not is_upskill_logs(runs_dir):
        raise UserError(f"{runs_dir}: no upskill run logs (RUNS_DIR/<batch>/run_N/run_result.json)")
    with tempfile.TemporaryDirectory(prefix="kernelgrade-upskill-runs-") as home:
        store = Store(Path(home) / "kernelgrade.db")
        try:
            import_upskill(runs_dir, store)
            yield store
        finally:
            store.close()


def _list(store: Store, *, skill: list[str] | None, model: list[str] | None, since: str | None,
          metric: str | None, as_json: str | None, as_csv: str | None, title: str = "runs") -> None:
    from harness.cli.render import console, emit
    from harness.report.csv_out import RUN_COLUMNS, runs_csv
    from harness.report.fit import print_table
    from harness.report.run_list import filter_rows, run_rows

    rows = filter_rows(run_rows(store), skill=skill or (), model=model or (), since=since)
    columns = list(RUN_COLUMNS)
    if metric is not None:
        rows = _with_figures(store, rows, metric)
        columns.append("pass rate" if metric == "success" else "tokens/trial")
    emit(json.dumps(rows, indent=2, default=str), as_json, what="JSON")
    emit(runs_csv(rows, FIGURES if metric else ()), as_csv, what="CSV")
    if "-" in (as_json, as_csv):
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in ("pass rate", "tokens/trial") else "left")
    for r in rows:
        kind = r["kind"] + (f" ({r['source']})" if r["source"] != "kernelgrade" else "")
        cells = [r["id"], kind, r["mode"], r["created"], r["status"], r["skill"], r["models"],
                 str(r["trials"]), str(r["answered"]), str(r["errors"])]
        if metric is not None:
            cells.append(_figure_cell(r, metric))
        table.add_row(*cells)
    if rows:
        print_table(console, table)
    else:
        console.print("no runs match" if (skill or model or since) else "no runs yet")


#: The figures --metric adds to each row (JSON and CSV keep them; None: no such trial).
FIGURES = ("pass_rate_baseline", "pass_rate_with_skill", "tokens_baseline", "tokens_with_skill")


def _with_figures(store: Store, rows: list[dict], metric: str) -> list[dict]:
    """Rows with per-arm pass rate (passed / graded) and mean tokens per answered trial, sorted by
    the with-skill figure (best first: highest rate, fewest tokens; runs without it last). A
    generate run's figures are those of the eval runs it made."""
    sums: dict[tuple[str, str], list[int]] = {}
    parent = {rid: gen for rid, gen in store.execute(
        "SELECT id, json_extract(config, '$.generate_run') FROM runs").fetchall()}
    for rid, arm, passed, graded, tokens, answers in store.execute("""
            SELECT t.run_id, t.arm, SUM(g.verdict = 'pass'), SUM(g.verdict IN ('pass', 'fail')),
                   SUM(COALESCE(json_extract(t.completion, '$.input_tokens'), 0)
                       + COALESCE(json_extract(t.completion, '$.output_tokens'), 0)),
                   SUM(t.completion IS NOT NULL)
            FROM trials t LEFT JOIN grades g ON g.id = (SELECT MAX(id) FROM grades WHERE trial_id = t.id)
            GROUP BY t.run_id, t.arm""").fetchall():
        for owner in filter(None, (rid, parent.get(rid))):
            acc = sums.setdefault((owner, arm), [0, 0, 0, 0])
            for i, v in enumerate((passed, graded, tokens, answers)):
                acc[i] += v or 0
    out = []
    for r in rows:
        figures = {}
        for arm in ("baseline", "with_skill"):
            passed, graded, tokens, answers = sums.get((r["id"], arm), [0, 0, 0, 0])
            figures[f"pass_rate_{arm}"] = round(passed / graded, 4) if graded else None
            figures[f"tokens_{arm}"] = round(tokens / answers) if answers else None
        out.append(r | figures)
    if metric == "success":
        key = lambda r: (r["pass_rate_with_skill"] is None, -(r["pass_rate_with_skill"] or 0))  # noqa: E731
    else:
        key = lambda r: (r["tokens_with_skill"] is None, r["tokens_with_skill"] or 0)  # noqa: E731
    return sorted(out, key=key)  # stable: ties stay newest first


def _figure_cell(row: dict, metric: str) -> str:
    """upskill's matrix cell: baseline -> with skill ("-" where the run has no such arm)."""
    def show(v):
        if v is None:
            return "-"
        return f"{v:.0%}" if metric == "success" else f"{v:,}"
    name = "pass_rate" if metric == "success" else "tokens"
    return f"{show(row[f'{name}_baseline'])} -> {show(row[f'{name}_with_skill'])}"


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
                                            "folder for the .eval logs; upskill: the runs folder the batch "
                                            "folder goes in."),
                fmt: Literal["tar", "inspect", "upskill"] = typer.Option(
                    "tar", "--format", help="tar: the run with its artifacts, for `runs import` (e.g. on an H100 "
                    "node); inspect: inspect_ai eval logs (one per model and arm) that `inspect view` opens "
                    "(needs the [inspect] extra); upskill: upskill's run logs (OUTPUT/<batch>/run_N/, "
                    "batch_summary.json), one upskill run per model, run index and arm.")) -> None:
    """Pack a run into a tar file (e.g. to rescore on an H100 node), or write inspect_ai or upskill logs.

    tar: the run's rows and artifacts. A generate run is packed with its teacher calls, its steps and the eval runs it made.
    upskill: an eval run as upskill's run logs (`upskill runs -d OUTPUT` and `kernelgrade runs -d OUTPUT` read them);
    an upskill run passes when every case of it passed."""
    if fmt == "upskill":
        from harness.store.db import Store
        from harness.workflows.upskill_export import write_upskill_logs

        store = Store()
        batch = write_upskill_logs(store, run_id, output)
        print(f"wrote upskill logs of {store.get_run(run_id).id} to {batch}")
        return
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
