"""Where grading runs (DESIGN.md "Executors"): local threads with a lane per GPU, or Ray tasks.

    settings = ExecutorSettings(executor="ray", ray_address="auto", gpus=None, cache_dir=None)
    with make_executor(settings, level="run", device="cuda") as executor:
        for outcome in executor.map_grades(tasks):     # as each completes
            store.record_grade(...)                    # the driver alone writes the store

Modules: tasks (content in, outcomes out, the steps of a grading), schedule (the decisions,
pure), gpus (which GPUs), node (provenance and the match rule), content (bytes to a node and
back), work (a step where it runs), local, ray_executor and ray_nodes, regrade (rescore's
driver side).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from harness.executors.base import Executor, ExecutorStatus, raise_for_failure
from harness.executors.tasks import GradeOutcome, GradeTask, Placement, stamp


class ExecutorSettings(BaseModel):
    """The options `eval`, `rescore` and `check` share (--executor, --ray-address, --gpus, --cache-dir)."""

    executor: Literal["local", "ray"] = "local"
    ray_address: str = "auto"
    """Ray: auto (the cluster this machine belongs to) or ray://HOST:PORT (Ray Client)."""
    gpus: str | None = None
    """Local: GPUs to use, as CUDA_VISIBLE_DEVICES names them ("0,1"); None: every visible one."""
    cache_dir: Path | None = None
    """The content cache (compiles, references, projects); per node unless it is shared."""


def make_executor(settings: ExecutorSettings, *, level: str, device: str, timing: bool = True) -> Executor:
    """An executor for a batch at `level` on `device`, with its level resolved (`.level`):
    locally by this machine (harness.checks.levels), on Ray by the cluster's nodes."""
    if settings.executor == "ray":
        from harness.executors.ray_executor import RayExecutor

        return RayExecutor(address=settings.ray_address, level=level, device=device, timing=timing,
                           cache_dir=settings.cache_dir)
    from harness.checks.levels import resolve_level
    from harness.executors.gpus import parse_gpu_list, visible_gpus
    from harness.executors.local import LocalExecutor, local_lanes

    resolved = resolve_level(level, device)  # type: ignore[arg-type]
    if settings.cache_dir is not None:
        os.environ["KERNELGRADE_CACHE"] = str(settings.cache_dir)  # read on every cache access
    lanes = local_lanes(level=resolved, device=device, gpus=parse_gpu_list(settings.gpus), visible=visible_gpus)
    executor = LocalExecutor(lanes=lanes)
    executor.level = resolved
    return executor


__all__ = ["Executor", "ExecutorSettings", "ExecutorStatus", "GradeOutcome", "GradeTask", "Placement",
           "make_executor", "raise_for_failure", "stamp"]
