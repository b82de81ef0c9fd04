"""Step functions that stand in for grading in local-executor tests (importable, so a lane's
spawned process can run them too)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from harness.common.results import CheckResult
from harness.executors.schedule import Lane
from harness.executors.tasks import GradeTask, Placement, Step, StepResult
from harness.scoring.grade import Grade
from harness.scoring.verdict import score

#: (lane name, step name, need, task key, start, end), appended by record_step.
LOG: list[tuple[str, str, str, str, float, float]] = []
_LOCK = threading.Lock()


def _grade(task: GradeTask, step: Step) -> Grade:
    results = [CheckResult(name="markers", status="pass", reason="fake")]
    return Grade(results=results, required=["markers"], score=score(results, ["markers"], step.level),
                 level=step.level, device=task.device)


def record_step(task: GradeTask, step: Step, lane: Lane | None = None, *, last: bool = True) -> StepResult:
    """Sleeps a little (longer for device steps) and records when it held its lane."""
    start = time.perf_counter()
    time.sleep(0.05 if step.need in ("gpu", "cpu_timing") else 0.02)
    end = time.perf_counter()
    with _LOCK:
        LOG.append((lane.name if lane else "", step.name, step.need, task.key, start, end))
    where = Placement(executor="local", step=step.name, node="test", lane=lane.name if lane else None,
                      gpu=lane.gpu if lane else None)
    return StepResult(key=task.key, step=step.name, grade=_grade(task, step), where=where, wall_s=end - start)


def sandboxed_env_step(task: GradeTask, step: Step, lane: Lane | None = None, *, last: bool = True) -> StepResult:
    """Runs a sandboxed child (as the run check does) that reports the environment and cores it
    got; the report comes back as the grade's reason."""
    from sandbox.limits import Limits
    from sandbox.run import run_sandboxed

    code = ("import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ.get('OMP_NUM_THREADS'), "
            "sorted(os.sched_getaffinity(0)))")
    work = Path(task.artifacts or ".")
    work.mkdir(parents=True, exist_ok=True)
    res = run_sandboxed([sys.executable, "-c", code], cwd=work, limits=Limits(wall_s=60), backend="local")
    grade = _grade(task, step)
    grade.results[0].reason = f"{res.stdout.strip()} parent={os.getpid()}"
    where = Placement(executor="local", step=step.name, node="test", lane=lane.name if lane else None)
    return StepResult(key=task.key, step=step.name, grade=grade, where=where, wall_s=0.0)


def gpu_probe_step(task: GradeTask, step: Step, lane: Lane | None = None, *, last: bool = True) -> StepResult:
    """A sandboxed child (as the run check starts) asks torch which GPUs it sees; the answer
    ("count uuid") comes back as the grade's reason."""
    from sandbox.limits import Limits
    from sandbox.run import run_sandboxed

    code = ("import torch; n = torch.cuda.device_count(); "
            "print(n, torch.cuda.get_device_properties(0).uuid if n else None)")
    work = Path(task.artifacts or ".")
    work.mkdir(parents=True, exist_ok=True)
    res = run_sandboxed([sys.executable, "-c", code], cwd=work, limits=Limits(wall_s=120), backend="local")
    grade = _grade(task, step)
    grade.results[0].reason = res.stdout.strip() or res.stderr.strip()[-300:]
    where = Placement(executor="local", step=step.name, node="test", lane=lane.name if lane else None,
                      gpu=lane.gpu if lane else None)
    return StepResult(key=task.key, step=step.name, grade=grade, where=where, wall_s=0.0)
