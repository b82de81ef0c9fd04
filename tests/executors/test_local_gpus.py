"""The local executor on this machine's real GPUs (skips without one): each lane's sandboxed
child sees exactly one GPU, a different one per lane, and every GPU is used."""

from __future__ import annotations

import pytest

from harness.executors.gpus import visible_gpus
from harness.executors.local import LocalExecutor
from harness.executors.schedule import gpu_lanes
from harness.executors.tasks import GradeTask
from tests.executors import fake_steps

CASE = {"input": "x", "kernel": {"op": "rmsnorm", "api": "rms_norm(x)", "checks": ["compile", "run"]}}


@pytest.mark.gpu
def test_each_gpu_lane_child_sees_its_one_gpu(tmp_path) -> None:
    gpus = visible_gpus()
    if not gpus:
        pytest.skip("no CUDA device visible: GPU lanes are tested on fake devices only (test_local.py)")
    tasks = [GradeTask(key=str(i), case=CASE, level="run", device="cuda", artifacts=str(tmp_path / str(i)))
             for i in range(2 * len(gpus))]
    with LocalExecutor(lanes=gpu_lanes(gpus), slots=1, step_fn=fake_steps.gpu_probe_step) as executor:
        outcomes = list(executor.map_grades(tasks))
    seen: dict[str, set[str]] = {}
    for o in outcomes:
        assert o.grade is not None, o.failure
        count, uuid = o.grade.results[0].reason.split()
        assert count == "1", o.grade.results[0].reason
        seen.setdefault(o.where.gpu, set()).add(uuid)
    assert set(seen) == set(gpus)  # every GPU used
    assert all(len(u) == 1 for u in seen.values())  # a lane is always the same GPU
    assert len({next(iter(u)) for u in seen.values()}) == len(gpus)  # and lanes are distinct GPUs
