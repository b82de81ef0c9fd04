"""Grading through an executor (issue 18): `rescore`, `eval` and `check` with
`--executor local|ray`, `--gpus`, `--cache-dir`.

The driver keeps what is the driver's: model calls (eval), the SQLite store (only this process
writes it: outcomes come back as data and are recorded here) and agent trials (their workspace
is rebuilt from the store's steps, on the driver). The grading itself goes to the executor, as
content (harness.executors.tasks.GradeTask). While a batch runs, a ticker hands the executor's
status line (nodes, tasks in flight) to the progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from harness.checks.base import GradeOptions
from harness.executors import ExecutorSettings, make_executor
from harness.executors.base import Executor, raise_for_failure
from harness.executors.regrade import RegradeResult, already_graded, answer_task, record, regrade, stored_versions
from harness.inputs.cases import Case
from harness.store.db import Store, TrialRecord

log = logging.getLogger(__name__)

#: How often the progress bar's "nodes · in flight" line is refreshed.
TICK_S = 0.5


@contextlib.contextmanager
def ticking(executor: Executor, on_status: Callable[[str], None], every_s: float = TICK_S) -> Iterator[None]:
    """Call `on_status(executor.status().line())` every `every_s` while the block runs, and once
    at the end."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            try:
                on_status(executor.status().line())
            except Exception:  # the bar is cosmetic; never let it stop a run
                log.debug("status line failed", exc_info=True)

    thread = threading.Thread(target=tick, name="executor-status", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
        with contextlib.suppress(Exception):
            on_status(executor.status().line())


@contextlib.contextmanager
def executor_for(settings: ExecutorSettings, *, level: str, device: str, progress: Any = None,
                 timing: bool = True) -> Iterator[Executor]:
    """An executor for one batch, its plan logged (the nodes used, those left out and why; on
    Ray also shown) and its status line fed to `progress` (harness.workflows.evaluate.Progress);
    closed at the end."""
    executor = make_executor(settings, level=level, device=device, timing=timing)
    try:
        for line in executor.describe():
            log.info("%s", line)
            if progress is not None and executor.name == "ray":
                progress.on_note(line)
        if progress is not None:
            with ticking(executor, progress.on_status):
                yield executor
        else:
            yield executor
    finally:
        executor.close()


def rescore_run(run_id: str, store: Store, *, level: str, device: str, sandbox: str, settings: ExecutorSettings,
                resume: bool, progress: Any) -> RegradeResult:
    """Re-grade a run's answered one-shot trials through the executor; with `resume`, a trial
    whose latest grade is at this level and device and by this kernelgrade is not graded again
    (a driver killed mid-rescore loses only the gradings in flight). `progress`: the
    callbacks of harness.workflows.evaluate.Progress."""
    run = store.get_run(run_id)
    fmt = run.config.get("answer_format") or "kernel-builder"
    with executor_for(settings, level=level, device=device, progress=progress) as executor:
        resolved = executor.level or level
        return regrade(store, run_id, executor, level=resolved, device=device, options=GradeOptions(sandbox=sandbox),
                       resume=resume, grade_kwargs={"answer_format": fmt}, on_start=progress.on_start,
                       on_trial=progress.on_trial)


def agent_todo(store: Store, run_id: str, trials: list[TrialRecord], *, level: str, device: str,
               resume: bool) -> list[TrialRecord]:
    """Agent trials to grade again (on the driver); with `resume`, those not yet graded here."""
    if not resume:
        return trials
    from harness.store.provenance import kernelgrade_version

    versions, version = stored_versions(store, run_id), kernelgrade_version()
    return [t for t in trials if not already_graded(t, level=level, device=device, version=version,
                                                    graded_by=versions.get(t.id))]


def grade_through(executor: Executor, store: Store, trial: TrialRecord, case: Case, text: str, *, level: str,
                  device: str, sandbox: str, answer_format: str = "kernel-builder") -> str:
    """eval's grading of one fresh answer through the executor; the driver records it.
    A failure of the infrastructure records nothing: `eval --resume` grades that trial again."""
    from harness.store.provenance import kernelgrade_version

    task = answer_task(trial, case.model_dump(mode="json"), level=level, device=device,
                       options=GradeOptions(sandbox=sandbox), grade_kwargs={"answer_format": answer_format})
    task = task.model_copy(update={"text": text})
    outcome = executor.submit(task).result()
    return record(store, trial, outcome, version=kernelgrade_version())


def check_through(settings: ExecutorSettings, project_dir: Path, *, level: str, device: str,
                  options: GradeOptions, artifacts: Path):
    """`check PROJECT` as one task of the executor (on Ray the project's files travel);
    returns (results, level used). Bad input still raises UserError."""
    from harness.executors.regrade import project_task

    with executor_for(settings, level=level, device=device) as executor:
        resolved = executor.level or level
        task = project_task(project_dir, level=resolved, device=device, options=options, artifacts=artifacts)
        outcome = raise_for_failure(executor.submit(task).result())
    assert outcome.grade is not None
    return outcome.grade.results, resolved


__all__ = ["TICK_S", "agent_todo", "check_through", "executor_for", "grade_through", "rescore_run", "ticking"]
