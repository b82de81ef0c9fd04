"""The scheduling decisions, on fake devices and fake nodes (no GPU, no cluster)."""

from __future__ import annotations

import random

import pytest

from harness.common.errors import UserError
from harness.executors.node import NodeInfo
from harness.executors.schedule import (GIB, TIMING_RESOURCE, LaneBook, cluster_level, compile_slots,
                                        cpu_timing_lanes, gpu_lanes, needs_of, plan_nodes, ray_options)
from harness.executors.tasks import GradeTask, plan_steps, steps_for


def test_compiles_are_bounded_by_memory_as_well_as_cores() -> None:
    assert compile_slots(16, 64 * GIB) == 16  # cores bind
    assert compile_slots(16, 8 * GIB) == 3  # 8 GB / 2.6 GB per torch-binding unit
    assert compile_slots(2, 24 * GIB) == 2
    assert compile_slots(8, 1 * GIB) == 1  # never zero
    assert compile_slots(4, None) == 1  # memory unknown: one at a time


def test_each_gpu_lane_sees_only_its_gpu() -> None:
    lanes = gpu_lanes(["0", "3", "GPU-abc"])
    assert [dict(lane.env)["CUDA_VISIBLE_DEVICES"] for lane in lanes] == ["0", "3", "GPU-abc"]
    assert all(lane.pinned and lane.kind == "gpu" for lane in lanes)


def test_cpu_timing_lanes_never_share_cores() -> None:
    lanes = cpu_timing_lanes(list(range(10)), 3)
    cores = [set(lane.cpus or ()) for lane in lanes]
    assert [len(c) for c in cores] == [4, 3, 3]
    assert set().union(*cores) == set(range(10))
    assert all(a.isdisjoint(b) for i, a in enumerate(cores) for b in cores[i + 1:])
    assert dict(lanes[0].env)["OMP_NUM_THREADS"] == "4"
    one = cpu_timing_lanes(list(range(10)))
    assert len(one) == 1 and not one[0].pinned  # the whole machine, as a plain run has it
    with pytest.raises(UserError):
        cpu_timing_lanes([0, 1], 3)


def test_no_two_holders_ever_share_a_lane() -> None:
    """A random schedule of acquire/release on fake GPUs, CPU-timing lanes and pool slots: a
    lane is never handed out while held, and every GPU is used when work waits."""
    rng = random.Random(7)
    book = LaneBook(lanes=gpu_lanes(["0", "1", "2", "3"]) + cpu_timing_lanes(list(range(8)), 2), slots=3)
    held: list = []
    peak = {"gpu": 0, "cpu_timing": 0, "pool": 0}
    for _ in range(5000):
        if held and rng.random() < 0.45:
            book.release(held.pop(rng.randrange(len(held))))
            continue
        need = rng.choice(["gpu", "cpu_timing", "compile", "cpu"])
        lane = book.acquire(need)
        if lane is None:
            kind = {"gpu": "gpu", "cpu_timing": "cpu_timing"}.get(need, "pool")
            assert sum(h.kind == kind for h in held) == {"gpu": 4, "cpu_timing": 2, "pool": 3}[kind]
            continue
        assert lane.name not in {h.name for h in held}, lane
        held.append(lane)
        for kind in peak:
            peak[kind] = max(peak[kind], sum(h.kind == kind for h in held))
    assert peak == {"gpu": 4, "cpu_timing": 2, "pool": 3}


def test_a_run_level_grading_holds_the_device_only_to_run() -> None:
    assert [(s.name, s.need) for s in plan_steps("run", "cuda")] == [("compile", "compile"), ("run", "gpu")]
    assert [s.need for s in plan_steps("run", "cpu", timing=True)] == ["compile", "cpu_timing"]
    assert [s.need for s in plan_steps("run", "cpu", timing=False)] == ["compile", "cpu"]
    assert [s.need for s in plan_steps("compile", "cuda")] == ["compile"]
    assert [s.need for s in plan_steps("run", "cuda", has_kernel=False)] == ["cpu"]
    timed = GradeTask(key="1", case={"input": "x", "kernel": {"op": "rmsnorm", "api": "f(x)",
                                                              "checks": ["compile", "run", "speedup"]}},
                      level="run", device="cpu")
    assert steps_for(timed)[-1].need == "cpu_timing"
    untimed = timed.model_copy(update={"case": {"input": "x", "kernel": {"op": "rmsnorm", "api": "f(x)",
                                                                         "checks": ["run"]}}})
    assert steps_for(untimed)[-1].need == "cpu"


def test_ray_resources_are_explicit() -> None:
    assert ray_options("gpu") == {"num_cpus": 1, "num_gpus": 1}
    assert ray_options("cpu_timing") == {"num_cpus": 1, "resources": {TIMING_RESOURCE: 1}}
    assert ray_options("compile") == {"num_cpus": 1, "memory": int(2.6 * GIB)}
    assert needs_of("run", "cuda", timing=True) == {"compile", "gpu"}


def _node(nid: str, **kw) -> NodeInfo:
    base = dict(host=f"h-{nid}", node_id=nid, kernelgrade="0.1.0", git_sha="abc", python="3.12", machine="x86_64",
                torch="2.11.0+cu130", nvcc="release 13.0", gpu_arch="9.0")
    return NodeInfo(**(base | kw))


GPU = {"CPU": 16.0, "GPU": 8.0, "memory": 500 * GIB}


def test_a_node_with_another_toolchain_gets_no_tasks_and_the_reason_is_kept() -> None:
    nodes = [_node("a"), _node("b", nvcc="release 12.4"), _node("c", gpu_arch="8.0"), _node("d")]
    plan = plan_nodes(nodes, {n.node_id: GPU for n in nodes}, {"compile", "gpu"}, head_id="a")
    assert [n.node_id for n in plan.usable] == ["a", "d"]
    assert "nvcc release 12.4 differs from h-a a's release 13.0" in plan.excluded["h-b b"]
    assert "gpu_arch 8.0 differs" in plan.excluded["h-c c"]


def test_a_driver_head_without_gpus_is_not_the_reference() -> None:
    head = _node("head", gpu_arch=None)
    nodes = [head, _node("x", nvcc="release 12.4"), _node("y"), _node("z")]
    resources = {"head": {"CPU": 0.0}, **{n: GPU for n in "xyz"}}
    plan = plan_nodes(nodes, resources, {"compile", "gpu"}, head_id="head")
    assert plan.reference is not None and plan.reference.node_id == "y"  # the toolchain most GPU nodes share
    assert [n.node_id for n in plan.usable] == ["y", "z"] and list(plan.excluded) == ["h-x x"]
    assert list(plan.idle) == ["h-head head"]


def test_the_cluster_must_run_the_drivers_code() -> None:
    nodes = [_node("a", git_sha="old")]
    with pytest.raises(UserError, match="other code than this driver"):
        plan_nodes(nodes, {"a": GPU}, {"gpu"}, head_id="a", driver=_node("me"))


def test_levels_on_a_cluster() -> None:
    gpu_nodes, cpu_nodes = [_node("a")], [_node("b", gpu_arch=None)]
    assert cluster_level("auto", "cuda", gpu_nodes, {"a": GPU}) == "run"
    assert cluster_level("auto", "cuda", cpu_nodes, {"b": {"CPU": 4.0}}) == "compile"
    assert cluster_level("auto", "cpu", cpu_nodes, {"b": {"CPU": 4.0}}) == "run"
    with pytest.raises(UserError, match="no node of the Ray cluster has a GPU"):
        cluster_level("run", "cuda", cpu_nodes, {"b": {"CPU": 4.0}})
