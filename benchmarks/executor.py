"""Executor benchmark (issue 18): the same rescore through `local` and through `ray`, on this machine.

The rescore: a stored run of CPU-device answers (the reference ops' CPU twins as projects, at
level run: a compile step, then a sandboxed correctness run; and text answers), the run the
executor tests use (tests/executors/runs.py), `--runs` times over. The compile cache is warmed
by one untimed local pass first, so every figure is grading, not compiling.

Prints:
  overhead  Ray's overhead per task: the driver's wall time for a task minus the time spent
            inside its steps on the worker, for text answers graded one at a time (the step
            itself takes about a millisecond). Target <= 50 ms.
  ratio     the rescore's total time through Ray (P one-CPU nodes) over local (P slots), at the
            same parallelism P (default 2), measured in `--repeats` back-to-back pairs; the
            median pair. Target <= 1.1x.
  nodes     1 node vs 2 nodes of the simulated cluster (ray.cluster_utils.Cluster on this
            machine): wall time, trials/s, speed-up over 1 node.

All nodes of the simulated cluster share this machine's cores: on a 2-core machine two
one-CPU nodes are all of it, and the driver's work competes with them. Each measurement uses a
fresh KERNELGRADE_HOME (runs database, artifacts); nothing touches your runs.

Usage: python benchmarks/executor.py [--runs 2] [--parallel 2] [--repeats 3] [--overhead-tasks 30]
                                    [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def workload() -> list[tuple[dict, str]]:
    """(case, answer) pairs; the stored run holds each `--runs` times."""
    from tests.executors.runs import REFS, TWIN_OPS, as_answer, text_case, twin_case

    return [(twin_case(op), as_answer(REFS / op)) for op in TWIN_OPS] + [(text_case(i), f"hello {i}") for i in range(2)]


def fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="kg-bench-executor-"))
    os.environ["KERNELGRADE_HOME"] = str(home)
    return home


def timed_rescore(executor, items: list[tuple[dict, str]], runs: int) -> tuple[float, int, dict]:
    """(seconds, trials graded, failures) for one rescore of a fresh stored run."""
    from harness.checks.base import GradeOptions
    from harness.executors.regrade import regrade
    from harness.store.db import Store
    from tests.executors.runs import store_run

    fresh_home()
    store = Store()
    run_id = store_run(store, items, runs=runs)
    start = time.perf_counter()
    done = regrade(store, run_id, executor, level="run", device="cpu", options=GradeOptions())
    return time.perf_counter() - start, done.graded, done.failed


def local_rescore(items, runs: int, parallel: int) -> tuple[float, int, dict]:
    from harness.executors.local import LocalExecutor

    with LocalExecutor(slots=parallel) as local:
        return timed_rescore(local, items, runs)


def ray_rescore(address: str, items, runs: int) -> tuple[float, int, dict, list[str]]:
    from harness.executors.ray_executor import RayExecutor

    with RayExecutor(address=address, level="run", device="cpu") as ex:
        seconds, graded, failed = timed_rescore(ex, items, runs)
        return seconds, graded, failed, ex.describe()


def ray_overhead(address: str, tasks: int) -> list[float]:
    """Driver wall minus worker busy time, per text task graded one at a time (ms)."""
    from harness.executors.ray_executor import RayExecutor
    from harness.executors.tasks import GradeTask

    out = []
    with RayExecutor(address=address, level="text", device="cpu") as ex:
        for i in range(tasks + 3):
            task = GradeTask(key=str(i), case={"input": "say hi", "expected": {"contains": ["hi"]}}, text="hi",
                             level="text", device="cpu")
            outcome = ex.grade(task)
            assert outcome.grade is not None, outcome.failure
            if i >= 3:  # the first tasks start the workers
                out.append((outcome.wall_s - outcome.busy_s) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2, help="times each answer is in the stored run")
    ap.add_argument("--parallel", type=int, default=2, help="local slots and Ray nodes for the ratio")
    ap.add_argument("--overhead-tasks", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3, help="local/ray pairs for the ratio")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from tests.executors.ray_cluster import pinned_sha

    with pinned_sha():  # the nodes run this checkout even if a commit lands meanwhile
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    import ray
    from ray.cluster_utils import Cluster

    from tests.executors.ray_cluster import timing_node

    items = workload()
    trials = len(items) * args.runs
    print(f"workload: {trials} trials (CPU twins at level run, text answers); this machine: "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    fresh_home()
    local_rescore(items, 1, args.parallel)  # warm the compile cache, untimed
    figures: dict = {"trials": trials, "parallel": args.parallel, "cores": os.cpu_count()}

    home = fresh_home()
    env = {"KERNELGRADE_HOME": str(home)}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "env_vars": env})
    pairs: list[tuple[float, float]] = []
    try:
        nodes = [cluster.add_node(**timing_node(env_vars=env))]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, namespace="kernelgrade")
        by_nodes: dict[int, float] = {}
        for count in sorted({1, 2, args.parallel}):
            while len(nodes) < count:
                nodes.append(cluster.add_node(**timing_node(env_vars=env)))
            cluster.wait_for_nodes()
            ray_rescore(cluster.address, items, 1)  # workers started on every node (they import torch), untimed
            seconds, graded, failed, plan = ray_rescore(cluster.address, items, args.runs)
            assert graded == trials and not failed, failed
            by_nodes[count] = seconds
            print(f"  ray, {count} node(s): {seconds:.1f} s; {plan[0]}")
            if count == args.parallel:
                # local and ray in turns, the cluster idle while local runs: the load of the
                # machine's other jobs drifts, a pair measured back to back shares it.
                for _ in range(args.repeats):
                    local_s, graded, failed = local_rescore(items, args.runs, args.parallel)
                    assert graded == trials and not failed, failed
                    ray_s = ray_rescore(cluster.address, items, args.runs)[0]
                    pairs.append((local_s, ray_s))
                    print(f"  pair: local {local_s:.1f} s, ray {ray_s:.1f} s, ratio {ray_s / local_s:.2f}x "
                          f"(load {os.getloadavg()[0]:.1f})")
        overhead = ray_overhead(cluster.address, args.overhead_tasks)
    finally:
        ray.shutdown()
        cluster.shutdown()

    ratios = [r / loc for loc, r in pairs]
    figures |= {"ray_s_by_nodes": by_nodes, "pairs_local_ray_s": pairs, "ratio_median": statistics.median(ratios),
                "overhead_ms_median": statistics.median(overhead),
                "overhead_ms_p90": sorted(overhead)[int(0.9 * (len(overhead) - 1))],
                "overhead_ms_mean": statistics.fmean(overhead), "overhead_tasks": len(overhead)}
    print(f"\nRay overhead per task ({len(overhead)} text tasks, one at a time): median "
          f"{figures['overhead_ms_median']:.1f} ms, p90 {figures['overhead_ms_p90']:.1f} ms, mean "
          f"{figures['overhead_ms_mean']:.1f} ms (target <= 50 ms)")
    print(f"rescore of {trials} trials at parallelism {args.parallel}, ray over local: median "
          f"{figures['ratio_median']:.2f}x of {len(ratios)} pairs ({', '.join(f'{r:.2f}' for r in ratios)}) "
          "(target <= 1.1x)")
    print("\nnodes | wall s | trials/s | vs 1 node")
    for count, seconds in sorted(by_nodes.items()):
        print(f"{count:5d} | {seconds:6.1f} | {trials / seconds:8.2f} | {by_nodes[1] / seconds:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
