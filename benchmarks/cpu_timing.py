"""CPU timing: our runner's timing vs torch.utils.benchmark.Timer on the same calls.

For each reference op with a CPU twin (kernels_reference/<op>/), and for both the twin and
the eager PyTorch reference, one child process (through sandbox/) measures:
  ours         the runner's method: fresh inputs per call, >= 2x LLC flush between calls,
               perf_counter_ns around each call, median (what `speedup` reports);
  ours_warm    the same loop on one input set without the flush: the same calls Timer makes;
  timer        torch.utils.benchmark.Timer(...).blocked_autorange() median.
Printed: ours_warm / timer (target within +-5%), ours / timer (the cost of a cold cache),
and the run-to-run spread of each over --repeats child runs. All figures are CPU figures.

    KERNELGRADE_CACHE=.kgcache .venv/bin/python benchmarks/cpu_timing.py [--ops rmsnorm] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _child(spec_path: str) -> None:
    """Runs in the child: measure twin and reference, print one JSON line."""
    import torch
    import torch.utils.benchmark as tb

    from harness.inputs.reference import load_reference_module
    from sandbox.programs.child_common import TimingSpec, make_inputs, seed_for, timing_loop
    from sandbox.programs.devices.cpu import CpuDevice

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    sys.path.insert(0, spec["package_parent"])
    import importlib

    twin = getattr(importlib.import_module(spec["package"]), spec["api"])
    ref = load_reference_module(Path(spec["reference"]))
    shape, dtype, iters, warmup = spec["shape"], spec["dtype"], spec["iters"], 3
    seeds = [seed_for(12345, i) for i in range(warmup + iters)]
    fresh = [make_inputs(ref, shape, dtype, s, "cpu") for s in seeds]
    tspec = TimingSpec(shape=shape, dtype=dtype, seeds=seeds, warmup=warmup)

    class Warm(CpuDevice):
        def make_flush(self):
            return lambda i: None

    out = {}
    for label, fn in (("twin", twin), ("reference", ref.reference)):
        cold = timing_loop(fn, lambda i: fresh[i], tspec, CpuDevice(), lambda j, o: None)
        warm = timing_loop(fn, lambda i: fresh[0], tspec, Warm(), lambda j, o: None)
        # Timer defaults to one thread; the runner uses torch's default, so match it.
        timer = tb.Timer(stmt="fn(*args)", globals={"fn": fn, "args": fresh[0]},
                         num_threads=torch.get_num_threads())
        measured = timer.blocked_autorange(min_run_time=spec["min_run_time"])
        out[label] = {"ours_ns": statistics.median(cold), "ours_warm_ns": statistics.median(warm),
                      "timer_ns": measured.median * 1e9}
    print(json.dumps(out))
    del torch


def _run_one(op: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    from harness.project.info import read_project
    from harness.inputs.reference import load_reference_module
    from harness.build.cpu_extension import build_cpu_extension
    from sandbox.run import run_sandboxed
    from sandbox.limits import Limits

    project = read_project(REPO / "kernels_reference" / op)
    build = build_cpu_extension(project, artifacts=workdir / op)
    if not build.ok:
        raise SystemExit(f"{op}: CPU build failed: {build.reason}")
    ref_path = REPO / "kernels_reference" / op / "reference.py"
    ref = load_reference_module(ref_path)
    shapes = getattr(ref, "TEST_SHAPES", None) or ref.SHAPES
    shape = list(args.shape) if args.shape else list(max(shapes, key=lambda s: (_numel(s), s)))
    spec = {"package_parent": str(build.package_dir.parent), "package": build.package_dir.name,
            "api": ref.API, "reference": str(ref_path), "shape": shape, "dtype": args.dtype,
            "iters": args.iters, "min_run_time": args.min_run_time, "threads": args.threads}
    spec_file = workdir / f"{op}.json"
    spec_file.write_text(json.dumps(spec))
    runs = []
    for _ in range(args.repeats):
        res = run_sandboxed([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_file)],
                            cwd=workdir, limits=Limits(wall_s=600, memory_mb=8192),
                            env_extra={"PYTHONPATH": str(REPO)},
                            ro_paths=(REPO, Path(sys.prefix), build.package_dir.parent))
        if not res.ok:
            raise SystemExit(f"{op}: child failed: {res.stderr[-2000:]}")
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    for r in runs:
        r["shape"] = shape
    return runs


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _spread(values: list[float]) -> float:
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--ops", nargs="*", default=None, help="ops in kernels_reference/ (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="child runs per op (run-to-run spread)")
    parser.add_argument("--iters", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--shape", type=int, nargs="*", default=None)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="Timer.blocked_autorange budget (s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the child (default: torch's); 1 is steadier on a shared machine")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    ops = args.ops or sorted(p.name for p in (REPO / "kernels_reference").iterdir()
                             if (p / "reference.py").is_file() and (p / "build.toml").is_file())
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="kg-cpu-timing-") as tmp:
        for op in ops:
            runs = _run_one(op, args, Path(tmp))
            raw[op] = runs
            for side in ("twin", "reference"):
                warm_ratio = [r[side]["ours_warm_ns"] / r[side]["timer_ns"] for r in runs]
                cold_ratio = [r[side]["ours_ns"] / r[side]["timer_ns"] for r in runs]
                rows.append((op, side, "x".join(map(str, runs[0]["shape"])),
                             statistics.median(r[side]["timer_ns"] for r in runs) / 1e3,
                             statistics.median(warm_ratio), statistics.median(cold_ratio),
                             _spread([r[side]["ours_warm_ns"] for r in runs]),
                             _spread([r[side]["timer_ns"] for r in runs])))
    header = ("op", "side", "shape", "timer_us", "warm/timer", "cold/timer", "spread_ours", "spread_timer")
    threads = args.threads or "default"
    out = [f"CPU timing ({args.dtype}, {args.iters} calls per measurement, {args.repeats} child runs, "
           f"threads={threads})",
           "  ".join(f"{h:>12}" for h in header)]
    for row in rows:
        op, side, shape, t_us, warm, cold, s_ours, s_timer = row
        out.append("  ".join([f"{op:>12}", f"{side:>12}", f"{shape:>12}", f"{t_us:12.1f}", f"{warm:12.3f}",
                              f"{cold:12.3f}", f"{s_ours:12.1%}", f"{s_timer:12.1%}"]))
    sys.stdout.write("\n".join(out) + "\n")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
