"""The local executor on fake devices: GPU lanes, CPU-timing lanes, the compile pool."""

from __future__ import annotations

import os
from itertools import combinations

from harness.executors.local import LocalExecutor
from harness.executors.schedule import Lane, cpu_timing_lanes, gpu_lanes
from harness.executors.tasks import GradeTask
from tests.executors import fake_steps

KERNEL_CASE = {"input": "x", "kernel": {"op": "rmsnorm", "api": "rms_norm(x)", "checks": ["compile", "run", "speedup"]}}


def _tasks(n: int, device: str) -> list[GradeTask]:
    return [GradeTask(key=str(i), case=KERNEL_CASE, level="run", device=device) for i in range(n)]


def _overlap(a, b) -> bool:
    return a[4] < b[5] and b[4] < a[5]


def _peak(entries) -> int:
    """The most entries holding their lane at one moment."""
    events = sorted([(e[4], 1) for e in entries] + [(e[5], -1) for e in entries])
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


def test_n_gpus_run_n_at_a_time_and_never_two_on_one_gpu() -> None:
    fake_steps.LOG.clear()
    with LocalExecutor(lanes=gpu_lanes(["0", "1", "2"]), slots=4, step_fn=fake_steps.record_step,
                       processes=False) as executor:
        outcomes = list(executor.map_grades(_tasks(18, "cuda")))
    assert sorted(int(o.key) for o in outcomes) == list(range(18)) and all(o.grade for o in outcomes)
    runs = [e for e in fake_steps.LOG if e[1] == "run"]
    assert {e[0] for e in runs} == {"gpu:0", "gpu:1", "gpu:2"}  # every GPU was used
    for a, b in combinations(runs, 2):
        assert not (a[0] == b[0] and _overlap(a, b)), (a, b)  # two runs never share a GPU
    assert _peak(runs) == 3  # N GPUs: N runs at a time
    compiles = [e for e in fake_steps.LOG if e[1] == "compile"]
    assert all(e[0].startswith("pool:") for e in compiles)
    assert _peak(compiles) <= 4  # the pool's slots
    assert {o.where.gpu for o in outcomes} == {"0", "1", "2"} and all(o.steps[0].step == "compile" for o in outcomes)


def test_cpu_timings_never_share_cores() -> None:
    fake_steps.LOG.clear()
    lanes = cpu_timing_lanes([0, 1, 2, 3], 2)
    with LocalExecutor(lanes=lanes, slots=2, step_fn=fake_steps.record_step, processes=False) as executor:
        list(executor.map_grades(_tasks(8, "cpu")))
    timings = [e for e in fake_steps.LOG if e[2] == "cpu_timing"]
    assert len(timings) == 8
    cores = {lane.name: set(lane.cpus or ()) for lane in lanes}
    for a, b in combinations(timings, 2):
        if _overlap(a, b):
            assert cores[a[0]].isdisjoint(cores[b[0]]), (a, b)


def test_a_step_without_a_lane_is_a_failure_not_a_hang() -> None:
    with LocalExecutor(lanes=[], slots=1, step_fn=fake_steps.record_step, processes=False) as executor:
        outcome = executor.grade(_tasks(1, "cuda")[0])
    assert outcome.grade is None and "no lane for a gpu step" in outcome.failure and outcome.error_type == "UserError"


def test_the_pin_reaches_the_sandboxed_child(tmp_path) -> None:
    """A GPU lane runs in a process started with CUDA_VISIBLE_DEVICES set; the sandbox passes it
    on, so the candidate's child sees only the lane's GPU. A CPU-timing lane's cores, too."""
    cores = sorted(os.sched_getaffinity(0))
    lanes = [Lane(name="gpu:5", kind="gpu", gpu="5", env=(("CUDA_VISIBLE_DEVICES", "5"),)),
             Lane(name="cpu-timing:0", kind="cpu_timing", cpus=(cores[-1],), env=(("OMP_NUM_THREADS", "1"),))]
    with LocalExecutor(lanes=lanes, slots=1, step_fn=fake_steps.sandboxed_env_step) as executor:
        gpu = executor.grade(GradeTask(key="g", case=KERNEL_CASE, level="run", device="cuda",
                                       artifacts=str(tmp_path / "g")))
        cpu = executor.grade(GradeTask(key="c", case=KERNEL_CASE, level="run", device="cpu",
                                       artifacts=str(tmp_path / "c")))
    gpu_seen = gpu.grade.results[0].reason
    assert gpu_seen.startswith("5 "), gpu_seen
    assert f"parent={os.getpid()}" not in gpu_seen  # graded in the lane's own process
    assert cpu.grade.results[0].reason.startswith(f"None 1 [{cores[-1]}]"), cpu.grade.results[0].reason
