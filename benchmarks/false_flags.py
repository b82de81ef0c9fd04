"""Honest twins under the trust boundary: how often an honest kernel is flagged (issue 24).

For each reference op's CPU twin (kernels_reference/<op>/, an honest kernel), --runs
independent grading runs of `run` and `speedup` (fresh secret seeds, fresh children, the
parent's clock and flush, the clock cross-check): counts the runs where either check did not
pass, and prints the cross-check's own figures (the harness's overhead around a call, the
part of a call missing from the child's clock, the tolerance) and the blocked calls' worst
excess over their tolerance (PyTorch's compute unavailable, harness/execute/timing.py), so a
near miss shows before it becomes a false flag. All figures are CPU figures from this machine.

    .venv/bin/python benchmarks/false_flags.py [--runs 20] [--ops rmsnorm softmax] [--timed-iters 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def grade_twin(op: str, workdir: Path, timed_iters: int) -> tuple[str, str, dict]:
    """(run status, speedup status or reason, speedup metrics) for one run of the op's twin."""
    from harness.checks.base import CheckContext, GradeOptions
    from harness.checks.run import check_run
    from harness.checks.speedup import check_speedup

    ctx = CheckContext(case=None, text="", project_dir=REPO / "kernels_reference" / op, level="run", device="cpu",
                       artifacts=workdir / "art", options=GradeOptions(timed_iters=timed_iters))
    run = check_run(ctx)
    if run.status != "pass":
        return run.status, f"run: {run.reason}", {}
    speed = check_speedup(ctx)
    return run.status, speed.status if speed.status == "pass" else f"speedup: {speed.reason}", speed.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="grading runs per op (default 20)")
    parser.add_argument("--ops", nargs="*", default=None, help="ops in kernels_reference/ (default: all)")
    parser.add_argument("--timed-iters", type=int, default=20, help="timed calls per round")
    args = parser.parse_args()
    ops = args.ops or sorted(p.name for p in (REPO / "kernels_reference").iterdir()
                             if (p / "reference.py").is_file() and (p / "build.toml").is_file())
    header = ("op", "runs", "flagged", "overhead_us", "excess_us", "slack_us", "max_excess/slack",
              "max_blocked/slack", "s/run")
    print(f"honest CPU twins, {args.runs} runs each ({time.strftime('%Y-%m-%d')}, CPU figures)")
    print("  ".join(f"{h:>16}" for h in header))
    total_flags, reasons = 0, []
    with tempfile.TemporaryDirectory(prefix="kg-false-flags-") as tmp:
        for op in ops:
            flags, overhead, excess, slack, blocked = 0, [], [], [], []
            t0 = time.perf_counter()
            for i in range(args.runs):
                _, outcome, m = grade_twin(op, Path(tmp) / op / str(i), args.timed_iters)
                if outcome != "pass":
                    flags += 1
                    reasons.append(f"{op} run {i}: {outcome}")
                if m:
                    overhead.append(m["reference_overhead_us"])
                    excess.append(m["clock_excess_us"])
                    slack.append(m["clock_slack_us"])
                if m.get("blocked_slack_us"):
                    blocked.append(m["blocked_excess_us"] / m["blocked_slack_us"])
            per_run = (time.perf_counter() - t0) / args.runs
            total_flags += flags
            worst = max((e / s for e, s in zip(excess, slack)), default=float("nan"))
            row = (op, args.runs, flags, statistics.median(overhead) if overhead else float("nan"),
                   statistics.median(excess) if excess else float("nan"),
                   statistics.median(slack) if slack else float("nan"), worst,
                   max(blocked, default=float("nan")), per_run)
            print("  ".join([f"{row[0]:>16}", f"{row[1]:>16}", f"{row[2]:>16}"]
                            + [f"{v:16.2f}" for v in row[3:]]), flush=True)
    print(f"false flags: {total_flags} of {args.runs * len(ops)} runs")
    for line in reasons:
        print("  " + line[:300])


if __name__ == "__main__":
    main()
