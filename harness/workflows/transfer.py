"""Move runs between machines: `runs export` packs runs with their artifacts into one tar file,
`runs import` unpacks it into this machine's store (e.g. to rescore on an H100 node)."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from harness.common.errors import UserError
from harness.common.paths import data_dir
from harness.store.db import RunRow, Store
from harness.workflows.generate_log import copy_generate_log, linked_runs


def with_linked(store: Store, run: RunRow) -> list[str]:
    """The run's id, then those of the eval runs a generate run made (they hold its trials)."""
    if run.kind != "generate":
        return [run.id]
    return [run.id, *linked_runs(store, run.id).values()]


def copy_runs(src: Store, dst: Store, run_ids: list[str]) -> None:
    """Runs with their trials and grades, plus a generate run's teacher calls and steps: all or nothing."""
    with dst.transaction():
        for run_id in run_ids:
            src.copy_run(run_id, dst)
            if src.get_run(run_id).kind == "generate":
                copy_generate_log(src, dst, run_id)


def export_run(run_id: str, output: Path) -> tuple[RunRow, list[str]]:
    """Write `run_id` (and, for a generate run, the eval runs it made) to the tar file `output`."""
    store = Store()
    run = store.get_run(run_id)
    run_ids = with_linked(store, run)
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "runs.sqlite"
        out = Store(sub)
        copy_runs(store, out, run_ids)
        out.close()
        with tarfile.open(output, "w") as tar:
            tar.add(sub, arcname="runs.sqlite")
            for rid in run_ids:
                art = data_dir() / "artifacts" / rid
                if art.is_dir():
                    tar.add(art, arcname=f"artifacts/{rid}")
    return run, run_ids


def import_runs(archive: Path) -> list[str]:
    """Copy every run in `archive` into this machine's store; refuses a run id already here."""
    if not archive.is_file():
        raise UserError(f"{archive}: no such file")
    store = Store()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        src = Store(Path(tmp) / "runs.sqlite")
        run_ids = list(src.iter_run_ids())
        here = set(store.iter_run_ids())
        clash = [r for r in run_ids if r in here]
        if clash:
            src.close()
            raise UserError(f"run {clash[0]} already exists here")
        copy_runs(src, store, run_ids)
        for rid in run_ids:
            art = Path(tmp) / "artifacts" / rid
            if art.is_dir():
                shutil.copytree(art, data_dir() / "artifacts" / rid, dirs_exist_ok=True)
        src.close()
    return run_ids


def export_inspect(run_id: str, out_dir: Path) -> list[Path]:
    """The run as inspect_ai eval logs under `out_dir` (one per model and arm)."""
    from harness.report.from_store import report_run
    from harness.report.inspect_out import write_inspect_logs

    store = Store()
    run = store.get_run(run_id)
    targets = {c.get("id", ""): _contains(c) for c in run.cases}
    return write_inspect_logs(report_run(store, run.id), out_dir, targets=targets)


def _contains(case: dict) -> list[str]:
    contains = (case.get("expected") or {}).get("contains") or []
    return [contains] if isinstance(contains, str) else list(contains)


#: Tables a run's rows live in, child tables first (foreign keys), keyed by how they reach the run.
_TRIAL_TABLES = ("grades", "agent_steps")
_RUN_TABLES = ("teacher_calls", "generate_steps")


def delete_run(run_id: str) -> list[str]:
    """Delete a run: its trials, grades, agent steps and artifacts; a generate run with its teacher
    calls, steps and the eval runs it made. Returns the ids deleted."""
    store = Store()
    run = store.get_run(run_id)
    run_ids = with_linked(store, run)
    tables = {r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()}
    with store.transaction():
        for rid in run_ids:
            for table in _TRIAL_TABLES:
                if table in tables:
                    store.execute(f"DELETE FROM {table} WHERE trial_id IN (SELECT id FROM trials WHERE run_id=?)",
                                  (rid,))
            store.execute("DELETE FROM trials WHERE run_id=?", (rid,))
            for table in _RUN_TABLES:
                if table in tables:
                    store.execute(f"DELETE FROM {table} WHERE run_id=?", (rid,))
            store.execute("DELETE FROM runs WHERE id=?", (rid,))
    for rid in run_ids:
        shutil.rmtree(data_dir() / "artifacts" / rid, ignore_errors=True)
    return run_ids


__all__ = ["copy_runs", "delete_run", "export_inspect", "export_run", "import_runs", "with_linked"]
