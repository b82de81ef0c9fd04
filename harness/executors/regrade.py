"""The driver's side of re-grading a stored run through an executor (`rescore`).

Tasks are built from the store (the answer's text, the case, the reference as content); the
executor grades them wherever it likes; outcomes stream back and the driver, alone, writes
each grade as it arrives. A grade is written once per outcome, so a retried step (a node that
died) never adds a second grade. An outcome that failed for the infrastructure writes nothing:
`--resume` finds that trial ungraded and grades it again; trials it finds graded at the same
level and device by this kernelgrade are not graded twice.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.checks.base import GradeOptions
from harness.executors.base import Executor
from harness.executors.tasks import GradeOutcome, GradeTask, options_dict, stamp
from harness.store.db import Store, TrialRecord, now

log = logging.getLogger(__name__)


def grade_folder(run_id: str, trial_id: int) -> Path:
    """A fresh folder for one grading (evaluate's naming): extraction never reuses one."""
    from harness.common.paths import artifacts_dir

    stamp_ = now().replace(":", "").replace("+0000", "")
    return artifacts_dir(run_id, create=False) / f"trial-{trial_id}" / f"grade-{stamp_}-{secrets.token_hex(3)}"


def answer_task(trial: TrialRecord, case_json: dict, *, level: str, device: str, options: GradeOptions | None = None,
                grade_kwargs: dict | None = None, artifacts: Path | None = None) -> GradeTask:
    """A stored one-shot answer as a grading task (content: the case, the text)."""
    folder = artifacts if artifacts is not None else grade_folder(trial.run_id, trial.id)
    text = trial.completion.text if trial.completion else ""
    return GradeTask(key=str(trial.id), kind="answer", case=case_json, text=text,
                     level=level, device=device,  # type: ignore[arg-type]
                     options=options_dict(options), grade_kwargs=dict(grade_kwargs or {}), artifacts=str(folder))


def project_task(project_dir: Path, *, level: str, device: str, options: GradeOptions | None = None,
                 artifacts: Path | None = None, key: str = "project") -> GradeTask:
    """`check PROJECT` as a grading task (the project's files travel when it goes to a node)."""
    ref = options.reference if options is not None else None
    return GradeTask(key=key, kind="project", project_dir=str(Path(project_dir).resolve()),
                     level=level, device=device,  # type: ignore[arg-type]
                     options=options_dict(options),
                     reference_path=str(Path(ref).resolve()) if ref else None,
                     artifacts=str(artifacts) if artifacts else None)


def already_graded(trial: TrialRecord, *, level: str, device: str, version: str, graded_by: str | None) -> bool:
    """Resume's rule (pure): the trial's latest grade is at this level and device, made by this
    kernelgrade version (`graded_by`: the version stored with that grade). Not graded again."""
    return trial.grade is not None and trial.grade.level == level and trial.grade.device == device \
        and graded_by == version


def stored_versions(store: Store, run_id: str) -> dict[int, str]:
    """trial id -> the kernelgrade version of its latest grade."""
    rows = store.execute(
        "SELECT g.trial_id, g.version FROM grades g JOIN trials t ON t.id = g.trial_id WHERE t.run_id = ? "
        "AND g.id = (SELECT MAX(id) FROM grades WHERE trial_id = g.trial_id)", (run_id,)).fetchall()
    return {r[0]: r[1] for r in rows}


@dataclass
class RegradeResult:
    graded: int = 0
    skipped: int = 0
    """Trials --resume found already graded."""
    failed: dict[str, str] = field(default_factory=dict)
    """trial id -> why its grading failed (left ungraded; --resume retries it)."""


def regrade(store: Store, run_id: str, executor: Executor, *, level: str, device: str,
            options: GradeOptions | None = None, resume: bool = False, grade_kwargs: dict | None = None,
            on_start: Callable[[int], None] = lambda total: None,
            on_trial: Callable[[TrialRecord, str], None] = lambda trial, verdict: None,
            on_outcome: Callable[[GradeOutcome], None] = lambda outcome: None) -> RegradeResult:
    """Grade every answered one-shot trial of the run through `executor` (agent trials are the
    caller's: their workspace lives in the store's steps)."""
    from harness.store.provenance import kernelgrade_version

    from harness.inputs.cases import parse_cases

    run = store.get_run(run_id)
    cases = {c.id: c.model_dump(mode="json") for c in parse_cases(run.cases, source=f"run {run_id}")}
    trials = store.trials(run_id, status="answered")
    version = kernelgrade_version()
    result = RegradeResult()
    if resume:
        versions = stored_versions(store, run_id)
        todo = [t for t in trials if not already_graded(t, level=level, device=device, version=version,
                                                        graded_by=versions.get(t.id))]
        result.skipped = len(trials) - len(todo)
        trials = todo
    on_start(len(trials))
    by_key = {str(t.id): t for t in trials}
    tasks = [answer_task(t, cases[t.case_id], level=level, device=device, options=options, grade_kwargs=grade_kwargs)
             for t in trials]
    for outcome in executor.map_grades(tasks):
        trial = by_key[outcome.key]
        verdict = record(store, trial, outcome, version=version)
        if outcome.grade is None:
            result.failed[outcome.key] = outcome.failure or "failed"
        else:
            result.graded += 1
        on_outcome(outcome)
        on_trial(trial, verdict)
    return result


def record(store: Store, trial: TrialRecord, outcome: GradeOutcome, *, version: str) -> str:
    """Write one outcome (the driver only): the grade with where it ran, or nothing for a
    failure. Returns the verdict, or "error"."""
    if outcome.grade is None:
        log.warning("trial %s not graded: %s", trial.id, outcome.failure)
        return "error"
    store.record_grade(trial.id, stamp(outcome.grade, outcome), version=version)
    return outcome.grade.score.verdict


__all__ = ["RegradeResult", "already_graded", "answer_task", "grade_folder", "project_task", "record", "regrade",
           "stored_versions"]
