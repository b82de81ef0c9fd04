"""A stored run as upskill's run logs, the reverse of harness/workflows/upskill_import.py.

upskill (its logging.py and cli.py) logs a batch as RUNS_DIR/<batch_id>/run_<N>/ with
run_metadata.json and run_result.json, plus batch_summary.json. Each run folder is one pass of
one model over every case, in one arm. It "passed" when every case passed, and it holds the
assertions summed over those cases and the token totals. Written here for a kernelgrade run, those
folders let `upskill runs`, `upskill runs --csv` and scripts written for upskill's folders read
kernelgrade's results. Each baseline folder comes just before its with-skill pair, so upskill
pairs them as it pairs its own.

What upskill's format has no place for stays in the store: the answers, each case's checks, the
compile and run results. kernelgrade's verdicts decide "passed" (a case passes when its required
checks pass, markers included), so a kernel case is judged by building and running it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from harness.common.errors import UserError
from harness.store.db import RunRow, Store, TrialRecord


class UpskillStats(BaseModel):
    """The fields of upskill's ConversationStats that a one-shot or agent trial fills."""

    llm_time_ms: float = 0.0
    turns: int = 0
    """One per answered case (an agent trial's own turns are shown by `runs show`)."""
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class UpskillMetadata(BaseModel):
    model: str
    task: str
    batch_id: str
    run_number: int
    timestamp: str


class UpskillRunResult(BaseModel):
    """upskill's RunResult, as its write_run_result dumps it."""

    metadata: UpskillMetadata
    stats: UpskillStats = Field(default_factory=UpskillStats)
    passed: bool = False
    assertions_passed: int = 0
    assertions_total: int = 0
    error_message: str | None = None
    session_id: str | None = None
    session_history_file: str | None = None
    run_type: str = "with_skill"
    skill_name: str | None = None


class UpskillBatchSummary(BaseModel):
    batch_id: str
    model: str
    task: str
    total_runs: int
    passed_runs: int
    results: list[UpskillRunResult]


def _started(run: RunRow) -> datetime:
    return datetime.fromisoformat(run.created.replace("Z", "+00:00"))


def batch_id_for(run: RunRow) -> str:
    """upskill names a batch by the minute it started (%Y_%m_%d_%H_%M); the run id keeps two
    runs of one minute apart."""
    return f"{_started(run):%Y_%m_%d_%H_%M}_{run.id}"


def _one_pass(trials: list[TrialRecord], *, model: str, arm: str, number: int, batch_id: str, task: str,
              timestamp: str, skill_name: str | None) -> UpskillRunResult:
    graded = [t for t in trials if t.grade is not None]
    errors = [t.error for t in trials if t.grade is None and t.error]
    answers = [t.completion for t in trials if t.completion is not None]
    input_tokens = sum(c.input_tokens for c in answers)
    output_tokens = sum(c.output_tokens for c in answers)
    return UpskillRunResult(
        metadata=UpskillMetadata(model=model, task=task, batch_id=batch_id, run_number=number, timestamp=timestamp),
        stats=UpskillStats(llm_time_ms=sum(c.latency_s for c in answers) * 1000, turns=len(answers),
                           input_tokens=input_tokens, output_tokens=output_tokens,
                           total_tokens=input_tokens + output_tokens),
        passed=bool(trials) and len(graded) == len(trials) and all(t.grade.score.verdict == "pass" for t in graded),
        assertions_passed=sum(t.grade.score.assertions_passed for t in graded),
        assertions_total=sum(t.grade.score.assertions_total for t in graded),
        error_message=(f"{len(errors)} of {len(trials)} cases errored; first: {errors[0]}" if errors else None),
        run_type=arm, skill_name=skill_name)


def upskill_results(run: RunRow, trials: list[TrialRecord]) -> list[UpskillRunResult]:
    """One upskill run result per model, run index and arm, baseline before its with-skill pair."""
    batch_id = batch_id_for(run)
    task = str(run.config.get("task") or (run.skill or {}).get("description") or "")
    skill_name = (run.skill or {}).get("name")
    passes: dict[tuple[str, int, str], list[TrialRecord]] = defaultdict(list)
    for t in trials:
        passes[(t.model, t.run_index, t.arm)].append(t)
    arm_order = {"baseline": 0, "with_skill": 1}
    model_order = {m: i for i, m in enumerate(run.config.get("models") or [])}
    keys = sorted(passes, key=lambda k: (model_order.get(k[0], len(model_order)), k[0], k[1], arm_order.get(k[2], 2)))
    return [_one_pass(passes[key], model=key[0], arm=key[2], number=n, batch_id=batch_id, task=task,
                      timestamp=_started(run).isoformat(), skill_name=skill_name)
            for n, key in enumerate(keys, 1)]


def write_upskill_logs(store: Store, run_id: str, runs_dir: Path) -> Path:
    """Write the run's upskill logs under runs_dir; returns the batch folder. A batch folder
    already there is refused rather than mixed with another run's folders."""
    run = store.get_run(run_id)
    if run.kind != "eval":
        raise UserError(f"run {run.id} is a {run.kind} run; upskill's logs hold eval runs (its eval runs "
                        f"are listed by `kernelgrade runs show {run.id}`)")
    results = upskill_results(run, store.trials(run.id))
    batch = Path(runs_dir) / batch_id_for(run)
    if batch.exists() and any(batch.iterdir()):
        raise UserError(f"{batch}: already written (upskill logs of run {run.id}); remove it to write them again")
    for result in results:
        folder = batch / f"run_{result.metadata.run_number}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run_metadata.json").write_text(json.dumps(result.metadata.model_dump(), indent=2), encoding="utf-8")
        (folder / "run_result.json").write_text(json.dumps(result.model_dump(), indent=2), encoding="utf-8")
    models = list(dict.fromkeys(r.metadata.model for r in results))
    summary = UpskillBatchSummary(batch_id=batch.name, model=", ".join(models), task=results[0].metadata.task
                                  if results else "", total_runs=len(results),
                                  passed_runs=sum(r.passed for r in results), results=results)
    batch.mkdir(parents=True, exist_ok=True)
    (batch / "batch_summary.json").write_text(json.dumps(summary.model_dump(), indent=2), encoding="utf-8")
    return batch


__all__ = ["UpskillRunResult", "batch_id_for", "upskill_results", "write_upskill_logs"]
