"""`kernelgrade runs import RUNS_DIR`: upskill's run logs as stored kernelgrade runs.

upskill logs each eval run under `runs/<batch_id>/run_<N>/` (its logging.py): run_metadata.json
(model, task, batch_id, run_number, timestamp) and run_result.json (RunResult: metadata, stats with
tokens and timings, passed, assertions_passed, assertions_total, error_message, run_type
"baseline" | "with_skill", skill_name), plus batch_summary.json per batch.

Those logs hold no answers and no per-case outcomes: one run_result counts assertions over all
the cases of one run. So each upskill run becomes one trial of a kernelgrade run (one per
batch), on one pseudo-case, UPSKILL_CASE, passing when every assertion passed (upskill's
benchmark "passed": every case of the run passed) and keeping k/n as its assertions; tokens and
LLM time come from its stats. `runs show` labels such runs, `runs compare` sets them beside
kernelgrade runs by that same per-run rule (harness/report/compare.py), and `rescore` refuses
them (there is no answer to grade).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from harness.common.errors import UserError
from harness.common.results import CheckResult
from harness.models.base import Completion
from harness.report.model import UPSKILL_CASE
from harness.scoring.grade import Grade
from harness.scoring.verdict import Score
from harness.store.db import Store, now
from harness.store.provenance import kernelgrade_version

log = logging.getLogger(__name__)

SOURCE = "upskill"


def is_upskill_logs(path: Path) -> bool:
    """A runs folder, a batch folder or a run folder written by upskill."""
    return path.is_dir() and bool(_batches(path))


def _batches(path: Path) -> list[Path]:
    if (path / "run_result.json").is_file() or (path / "run_metadata.json").is_file():
        return [path.parent]
    if any(p.is_dir() for p in path.glob("run_*")):
        return [path]
    return sorted(p for p in path.iterdir() if p.is_dir() and any(r.is_dir() for r in p.glob("run_*")))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not an upskill log: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not an upskill log: expected a JSON object")
    return data


def _run_number(folder: Path) -> int:
    try:
        return int(folder.name.removeprefix("run_"))
    except ValueError:
        return 0


def read_batch(batch: Path) -> list[dict[str, Any]]:
    """The batch's run results in run order (run_metadata.json alone: an unfinished run, an error)."""
    runs = []
    for folder in sorted((p for p in batch.glob("run_*") if p.is_dir()), key=_run_number):
        result = _read(folder / "run_result.json")
        if result is None:
            meta = _read(folder / "run_metadata.json")
            if meta is None:
                continue
            result = {"metadata": meta, "error_message": "no run_result.json (the run did not finish)"}
        meta = result.get("metadata") or {}
        if not isinstance(meta, dict) or not meta.get("model"):
            raise UserError(f"{folder}: run_result.json: metadata.model missing (not an upskill run log)")
        runs.append(result | {"folder": str(folder)})
    return runs


def _run_id(batch: Path, runs: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256(json.dumps([{k: v for k, v in r.items() if k != "folder"} for r in runs],
                                       sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"upskill-{batch.name}-{digest}"


def _grade(result: dict[str, Any]) -> Grade:
    k, n = int(result.get("assertions_passed") or 0), int(result.get("assertions_total") or 0)
    passed = n > 0 and k == n
    check = CheckResult(name="markers", status="pass" if passed else "fail",
                        reason=f"upskill: {k}/{n} assertions passed"
                               + ("" if passed else " (upskill's run passes only when every case passed)"),
                        metrics={"assertions_passed": k, "assertions_total": n,
                                 "upskill_passed": bool(result.get("passed"))})
    score = Score(verdict="pass" if passed else "fail", reason=check.reason, assertions_passed=k,
                  assertions_total=n, skipped=[])
    return Grade(results=[check], required=["markers"], score=score, level="text", device="cuda")


def _store_trials(store: Store, run_id: str, runs: list[dict[str, Any]], keys: list[tuple]) -> None:
    store.add_trials(run_id, keys)
    by_key = {(t.case_id, t.model, t.arm, t.run_index): t for t in store.trials(run_id)}
    for r, key in zip(runs, keys):
        trial = by_key[key]
        if r.get("error_message") and not r.get("assertions_total"):
            store.record_error(trial.id, f"upskill: {r['error_message']}", calls=0)
            continue
        stats = r.get("stats") or {}
        completion = Completion(text="", model=r["metadata"]["model"], provider=SOURCE,
                                input_tokens=int(stats.get("input_tokens") or 0),
                                output_tokens=int(stats.get("output_tokens") or 0),
                                latency_s=float(stats.get("llm_time_ms") or 0.0) / 1000)
        store.record_completion(trial.id, completion, count_calls=False)
        store.record_grade(trial.id, _grade(r), version=f"upskill import ({kernelgrade_version()})")


def import_batch(store: Store, batch: Path) -> str | None:
    """Store one upskill batch as a run; None when it holds no run. UserError when already imported."""
    runs = read_batch(batch)
    if not runs:
        return None
    run_id = _run_id(batch, runs)
    if run_id in set(store.iter_run_ids()):
        raise UserError(f"{batch}: already imported as run {run_id}")
    models = list(dict.fromkeys(r["metadata"]["model"] for r in runs))
    index: dict[tuple[str, str], int] = {}
    keys = []
    for r in runs:
        arm = r.get("run_type") if r.get("run_type") in ("baseline", "with_skill") else "with_skill"
        key = (r["metadata"]["model"], arm)
        keys.append((UPSKILL_CASE, key[0], arm, index.setdefault(key, 0)))
        index[key] += 1
    skill = next((r.get("skill_name") for r in runs if r.get("skill_name")), None)
    task = next((r["metadata"].get("task") for r in runs if r["metadata"].get("task")), "")
    config = {"imported_from": SOURCE, "source": str(batch), "batch_id": batch.name, "models": models,
              "runs": max(index.values()), "mode": "one-shot", "resolved_level": "text", "task": task,
              "unit": "one trial per upskill run (every case of that run); pass = every case passed"}
    env = {"source": SOURCE, "upskill_batch": batch.name, "imported_by": kernelgrade_version(), "imported_at": now()}
    # Dated by when upskill ran it (its first run's metadata.timestamp), so lists and --since agree with upskill.
    stamps = sorted(str(r["metadata"].get("timestamp") or "") for r in runs)
    cases = [{"id": UPSKILL_CASE, "input": task or "(the cases of one upskill run)",
              "expected": {"contains": []}}]
    store.create_run(kind="eval", config=config, env=env, skill={"name": skill} if skill else None,
                     cases=cases, run_id=run_id, created=stamps[0] or None)
    try:
        _store_trials(store, run_id, runs, keys)
    except BaseException:  # all or nothing: a half-imported batch would refuse the next try
        store.execute("DELETE FROM grades WHERE trial_id IN (SELECT id FROM trials WHERE run_id=?)", (run_id,))
        store.execute("DELETE FROM trials WHERE run_id=?", (run_id,))
        store.execute("DELETE FROM runs WHERE id=?", (run_id,))
        raise
    store.set_run_status(run_id, "finished")
    return run_id


def import_upskill(path: Path, store: Store | None = None) -> list[str]:
    """Every batch under `path` (a runs folder, one batch, or one run folder) as a run in `store`
    (default: the user's)."""
    if not is_upskill_logs(path):
        raise UserError(f"{path}: no upskill run logs (runs/<batch>/run_N/run_result.json) and not a "
                        "`kernelgrade runs export` tar file")
    store = store or Store()
    return [rid for batch in _batches(path) if (rid := import_batch(store, batch)) is not None]


__all__ = ["SOURCE", "UPSKILL_CASE", "import_upskill", "is_upskill_logs", "read_batch"]
