"""CPU timing: the runner's figures vs torch.utils.benchmark.Timer on the same op and shape.

For each reference op with a CPU twin (kernels_reference/<op>/), --repeats grading runs:
  ours    the `speedup` check's medians for the twin and for the eager PyTorch reference: fresh
          inputs per call, the parent's >= 2x LLC flush between calls, each call timed by the
          child and confirmed by the parent's clock (harness/execute/timing.py);
  timer   torch.utils.benchmark.Timer(...).blocked_autorange() median in a sandboxed child, on
          one input set (warm caches), for the twin and the reference.
Printed: ours / timer per side (above 1: the cost of a cold cache and of the outside floor),
and the run-to-run spread of each. All figures are CPU figures.

    .venv/bin/python benchmarks/cpu_timing.py [--ops rmsnorm] [--repeats 3] [--threads 1]
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
    """Runs in the child: Timer on the twin and the reference, print one JSON line."""
    import torch
    import torch.utils.benchmark as tb

    from harness.inputs.reference import load_reference_module
    from sandbox.programs.child_common import make_inputs, seed_for

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    sys.path.insert(0, spec["package_parent"])
    import importlib

    twin = getattr(importlib.import_module(spec["package"]), spec["api"])
    ref = load_reference_module(Path(spec["reference"]))
    args = make_inputs(ref, spec["shape"], spec["dtype"], seed_for(12345, 0), "cpu")
    out = {}
    for label, fn in (("twin", twin), ("reference", ref.reference)):
        # Timer defaults to one thread; the runner uses torch's default, so match it.
        timer = tb.Timer(stmt="fn(*args)", globals={"fn": fn, "args": args}, num_threads=torch.get_num_threads())
        out[label] = {"timer_ns": timer.blocked_autorange(min_run_time=spec["min_run_time"]).median * 1e9}
    print(json.dumps(out))


def _run_one(op: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    from benchmarks.false_flags import grade_twin
    from harness.build.cpu_extension import build_cpu_extension
    from harness.inputs.reference import load_reference_module
    from harness.project.info import read_project
    from sandbox.limits import Limits
    from sandbox.run import run_sandboxed

    project = read_project(REPO / "kernels_reference" / op)
    build = build_cpu_extension(project, artifacts=workdir / op)
    if not build.ok:
        raise SystemExit(f"{op}: CPU build failed: {build.reason}")
    ref_path = REPO / "kernels_reference" / op / "reference.py"
    ref = load_reference_module(ref_path)
    runs = []
    for i in range(args.repeats):
        _, outcome, m = grade_twin(op, workdir / f"{op}-{i}", args.iters)
        if outcome != "pass":
            raise SystemExit(f"{op}: the twin did not pass ({outcome})")
        shape = [int(v) for v in m["timing_shape"].split("x")]
        spec = {"package_parent": str(build.package_dir.parent), "package": build.package_dir.name,
                "api": ref.API, "reference": str(ref_path), "shape": shape, "dtype": m["timing_dtype"],
                "min_run_time": args.min_run_time, "threads": args.threads}
        spec_file = workdir / f"{op}.json"
        spec_file.write_text(json.dumps(spec))
        res = run_sandboxed([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_file)],
                            cwd=workdir, limits=Limits(wall_s=600, memory_mb=8192),
                            env_extra={"PYTHONPATH": str(REPO)},
                            ro_paths=(REPO, Path(sys.prefix), build.package_dir.parent))
        if not res.ok:
            raise SystemExit(f"{op}: child failed: {res.stderr[-2000:]}")
        timer = json.loads(res.stdout.strip().splitlines()[-1])
        runs.append({"shape": shape, "dtype": m["timing_dtype"],
                     "twin": {"ours_ns": m["candidate_median_us"] * 1e3, **timer["twin"]},
                     "reference": {"ours_ns": m["reference_median_us"] * 1e3, **timer["reference"]}})
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
    parser.add_argument("--iters", type=int, default=50, help="timed calls per round of the speedup check")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="Timer.blocked_autorange budget (s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in Timer's child (default: torch's, as the runner uses)")
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
                ratio = [r[side]["ours_ns"] / r[side]["timer_ns"] for r in runs]
                rows.append((op, side, "x".join(map(str, runs[0]["shape"])),
                             statistics.median(r[side]["timer_ns"] for r in runs) / 1e3,
                             statistics.median(r[side]["ours_ns"] for r in runs) / 1e3,
                             statistics.median(ratio), _spread([r[side]["ours_ns"] for r in runs]),
                             _spread([r[side]["timer_ns"] for r in runs])))
    header = ("op", "side", "shape", "timer_us", "ours_us", "ours/timer", "spread_ours", "spread_timer")
    threads = args.threads or "default"
    out = [f"CPU timing ({args.iters} timed calls per round, {args.repeats} grading runs, Timer threads={threads})",
           "  ".join(f"{h:>12}" for h in header)]
    for row in rows:
        op, side, shape, t_us, o_us, ratio, s_ours, s_timer = row
        out.append("  ".join([f"{op:>12}", f"{side:>12}", f"{shape:>12}", f"{t_us:12.1f}", f"{o_us:12.1f}",
                              f"{ratio:12.3f}", f"{s_ours:12.1%}", f"{s_timer:12.1%}"]))
    sys.stdout.write("\n".join(out) + "\n")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
