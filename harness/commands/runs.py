"""`kernelgrade runs`: list, show, compare, export and import stored runs."""

from __future__ import annotations

import json
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.store import RunRow, Store

runs_app = typer.Typer(help="Stored runs: list (default), show, compare, export, import.",
                       invoke_without_command=True, no_args_is_help=False)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON on stdout.")) -> None:
    """List stored runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.commands._render import console
    from harness.store import Store

    rows = Store().list_runs()
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="runs")
    for col in ("id", "kind", "created", "status", "models", "trials", "answered", "errors"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["kind"], r["created"], r["status"], ", ".join(r["config"].get("models", [])),
                      str(r["trials"]), str(r["answered"] or 0), str(r["errors"] or 0))
    console.print(table if rows else "no runs yet")


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
              as_json: bool = typer.Option(False, "--json"),
              junit: Path = typer.Option(None, "--junit"),
              html: Path = typer.Option(None, "--html")) -> None:
    """Show one run's results table (or JSON / JUnit / HTML).

    A generate run has no trials of its own: it is shown as its teacher calls and the
    eval runs it made (each shown in full with `runs show` on its id)."""
    from harness.commands._render import report_and_gate
    from harness.store import Store

    store = Store()
    run = store.get_run(run_id)
    if run.kind == "generate":
        _show_generate(store, run.id, as_json=as_json, files=[f for f in (junit, html) if f])
        return
    report_and_gate(store, run.id, as_json=as_json, junit=junit, html=html, fail_under=None, min_lift=None)


def _show_generate(store: Store, run_id: str, *, as_json: bool, files: list[Path]) -> None:
    from harness.commands._render import console
    from harness.report.terminal import render_generate
    from harness.runview import generate_view

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
    from harness.commands._render import console
    from harness.errors import GateFailed
    from harness.report.compare import compare_runs, render_compare
    from harness.runview import report_run
    from harness.store import Store

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
    """Pack a run (its rows and artifacts) into a tar file, e.g. to rescore it on an H100 node."""
    from harness.paths import data_dir
    from harness.store import Store

    store = Store()
    run = store.get_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "runs.sqlite"
        out = Store(sub)
        out.create_run(kind=run.kind, config=run.config, env=run.env, skill=run.skill, cases=run.cases, run_id=run.id)
        out.close()
        src = sqlite3.connect(store.path)
        dst = sqlite3.connect(sub)
        cols = "id, run_id, case_id, model, arm, run_index, status, prompt, prompt_sha256, request, completion, error, calls, updated"
        dst.executemany(f"INSERT INTO trials ({cols}) VALUES ({','.join('?' * 14)})",
                        src.execute(f"SELECT {cols} FROM trials WHERE run_id=?", (run.id,)).fetchall())
        dst.executemany("INSERT INTO grades (trial_id, graded, level, device, verdict, grade, version) VALUES (?,?,?,?,?,?,?)",
                        src.execute("SELECT g.trial_id, g.graded, g.level, g.device, g.verdict, g.grade, g.version "
                                    "FROM grades g JOIN trials t ON t.id=g.trial_id WHERE t.run_id=?", (run.id,)).fetchall())
        dst.commit()
        dst.close()
        with tarfile.open(output, "w") as tar:
            tar.add(sub, arcname="runs.sqlite")
            art = data_dir() / "artifacts" / run.id
            if art.is_dir():
                tar.add(art, arcname=f"artifacts/{run.id}")
    print(f"exported {run.id} to {output}")


@runs_app.command("import")
def runs_import(archive: Path) -> None:
    """Import a run exported with `runs export` (trial ids are renumbered)."""
    from harness.paths import data_dir
    from harness.store import Store

    if not archive.is_file():
        raise UserError(f"{archive}: no such file")
    store = Store()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        src_store = Store(Path(tmp) / "runs.sqlite")
        (run_id,) = list(src_store.iter_run_ids())
        run = src_store.get_run(run_id)
        if any(r == run_id for r in store.iter_run_ids()):
            raise UserError(f"run {run_id} already exists here")
        store.create_run(kind=run.kind, config=run.config, env=run.env, skill=run.skill, cases=run.cases, run_id=run.id)
        imported = src_store.trials(run_id)
        key = lambda t: (t.case_id, t.model, t.arm, t.run_index)  # noqa: E731
        store.add_trials(run_id, [key(t) for t in imported])
        new_ids = {key(t): t.id for t in store.trials(run_id)}
        for t in imported:
            new_id = new_ids[key(t)]
            if t.prompt:
                store.record_prompt(new_id, t.prompt, t.prompt_sha256 or "", t.request or {})
            if t.completion:
                store.record_completion(new_id, t.completion)
            elif t.error:
                store.record_error(new_id, t.error)
            if t.grade:
                store.record_grade(new_id, level=t.grade.get("level", "text"), device=t.grade.get("device", "cuda"),
                                   verdict=t.grade["score"]["verdict"], grade=t.grade, version="imported")
        store.set_run_status(run_id, run.status)
        art = Path(tmp) / "artifacts" / run_id
        if art.is_dir():
            import shutil

            shutil.copytree(art, data_dir() / "artifacts" / run_id, dirs_exist_ok=True)
    print(f"imported {run_id}")
