"""One grading step where it runs: a local thread, a pinned local lane process, a Ray worker.

`run_step` grades a task at the step's level with today's code (grade_answer for an answer,
the project checks for `check`). The candidate's faults are results inside the grade; only a
fault of kernelgrade or of the machine raises, and only that is ever retried. Remote steps
write into the node's content cache and a temporary folder, and send the folder's small files
back as bytes (harness.executors.content).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from harness.common.check_table import PROJECT_CHECKS
from harness.executors.content import content_root, materialize_project, materialize_reference, pack
from harness.executors.node import cached_local_node, fingerprint
from harness.executors.schedule import Lane
from harness.executors.tasks import GradeTask, Placement, Step, StepResult
from harness.scoring.grade import Grade


def grade_project_checks(project_dir: Path, *, level, device, artifacts: Path, options) -> Grade:
    """`check PROJECT`'s checks (every project check within the level) as a Grade."""
    from harness.checks.base import CheckContext
    from harness.scoring.grade import run_checks
    from harness.scoring.verdict import score

    required = list(PROJECT_CHECKS)
    ctx = CheckContext(case=None, text="", project_dir=Path(project_dir).resolve(), level=level, device=device,
                       artifacts=artifacts, options=options)
    results = run_checks(ctx, required)
    return Grade(results=results, required=required, score=score(results, required, level), level=level,
                 device=device)


def _grade(task: GradeTask, step: Step, *, artifacts: Path, reference: Path | None,
           project_dir: Path | None) -> Grade:
    options = task.grade_options(reference)
    if task.kind == "project":
        if project_dir is None:
            raise ValueError(f"task {task.key}: a project task without a project")
        return grade_project_checks(project_dir, level=step.level, device=task.device, artifacts=artifacts,
                                    options=options)
    from harness.inputs.cases import Case
    from harness.scoring.grade import grade_answer

    case = Case.model_validate(task.case or {})
    return grade_answer(case, task.text, level=step.level, device=task.device, artifacts=artifacts,
                        options=options, **task.grade_kwargs)


def placement(executor: str, step: Step, *, node_id: str | None = None, lane: Lane | None = None) -> Placement:
    """Where this step is running now: this node, and the GPU it sees when it holds one."""
    info = cached_local_node(node_id)
    pin = None
    if step.need == "gpu":
        pin = (lane.gpu if lane is not None and lane.gpu else None) or os.environ.get("CUDA_VISIBLE_DEVICES")
    gpu = info.gpu(pin)
    return Placement(executor=executor, step=step.name, node=info.host, node_id=node_id,
                     lane=lane.name if lane is not None else None, gpu=pin,
                     gpu_name=gpu.name if gpu else None, gpu_arch=gpu.compute_cap if gpu else info.gpu_arch,
                     driver=gpu.driver if gpu else info.driver, torch=info.torch, nvcc=info.nvcc, cpu=info.cpu,
                     fingerprint=fingerprint(info))


def run_local_step(task: GradeTask, step: Step, lane: Lane | None = None, *, last: bool = True) -> StepResult:
    """A step on the driver's machine: paths as the driver has them. The last step grades into
    the driver's artifacts folder; an earlier one (a compile that fills the cache) into a
    scratch folder, since extraction never writes into a used folder."""
    start = time.perf_counter()
    scratch = None
    if last and task.artifacts:
        folder = Path(task.artifacts)
    else:
        scratch = folder = Path(tempfile.mkdtemp(prefix="kg-step-"))
    if task.has_kernel():
        folder.mkdir(parents=True, exist_ok=True)
    try:
        grade = _grade(task, step, artifacts=folder,
                       reference=Path(task.reference_path) if task.reference_path else None,
                       project_dir=Path(task.project_dir) if task.project_dir else None)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return StepResult(key=task.key, step=step.name, grade=grade, where=placement("local", step, lane=lane),
                      wall_s=time.perf_counter() - start)


def run_remote_step(task: GradeTask, step: Step, cache_dir: str | None = None, *, last: bool = True) -> StepResult:
    """A step on a Ray worker: everything from the task's content, nothing from the driver's
    disk. Each compile step compiles its units one at a time (the task holds one core)."""
    start = time.perf_counter()
    if cache_dir:
        os.environ["KERNELGRADE_CACHE"] = cache_dir
    os.environ.setdefault("KERNELGRADE_COMPILE_JOBS", "1")
    root = content_root(Path(cache_dir) if cache_dir else None)
    reference = materialize_reference(task.reference, root) if task.reference is not None else None
    project_dir = None
    if task.kind == "project":
        project_dir = materialize_project(task.files or {}, task.project_name or "project", root)
    (root / "work").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="grade-", dir=root / "work"))
    try:
        grade = _grade(task, step, artifacts=folder, reference=reference, project_dir=project_dir)
        bundle, outside = pack(folder, grade) if last else (None, {})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return StepResult(key=task.key, step=step.name, grade=grade, where=placement("ray", step, node_id=node_id),
                      wall_s=time.perf_counter() - start, bundle=bundle, node_root=str(folder), node_logs=outside)


def probe_node(cache_dir: str | None = None) -> dict:
    """What a node is (harness.executors.node.NodeInfo as JSON): the Ray probe task."""
    import ray

    from harness.executors.node import local_node

    if cache_dir:
        os.environ["KERNELGRADE_CACHE"] = cache_dir
    return local_node(ray.get_runtime_context().get_node_id()).model_dump(mode="json")


__all__ = ["grade_project_checks", "placement", "probe_node", "run_local_step", "run_remote_step"]
