"""KernelBench import and grading benchmark (issue 21).

  import     `import_kernelbench` over a KernelBench checkout: seconds per problem (meta-device
             sizing, CPU scaling with timed reference calls, the behaviour probe, writing),
             with the median, the slowest problems and the counts per level;
  grade      the CPU grading time of one imported case through the run check (and, with
             --speedup, the speedup check): cold (an empty compile cache, so the CPU build
             runs) and warm (the same again, the build a cache hit). The answer is the honest
             fixture project (tests/fixtures/kernelbench/answers/honest_cpu) or, with
             --answer-format kernelbench, the fixture ModelNew answer run through the adapter.

    .venv/bin/python benchmarks/kernelbench_import.py [KERNELBENCH_DIR] [--level 1] [--problems 1-100]
        [--case kb-l1-003-linear] [--answer-format project|kernelbench] [--speedup] [--json FILE]

Without KERNELBENCH_DIR the fixture checkout (tests/fixtures/kernelbench) is imported. The
grading case must be one of the fixture problems (it needs an answer): it is always
imported from the fixtures. Figures are wall-clock seconds on this machine, CPU only.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURES = REPO / "tests" / "fixtures" / "kernelbench"


def bench_import(root: Path, levels: list[int], numbers: list[int] | None, out: Path) -> dict:
    from harness.kernelbench.importer import import_kernelbench

    t0 = time.perf_counter()
    result = import_kernelbench(root, out, levels=levels, numbers=numbers)
    total = time.perf_counter() - t0
    per = sorted(result.seconds.items(), key=lambda kv: -kv[1])
    return {"problems": len(per), "total_s": total, "median_s": statistics.median(v for _, v in per),
            "mean_s": total / len(per), "slowest": [[k, round(v, 2)] for k, v in per[:5]],
            "counts": {str(k): v for k, v in result.counts().items()}}


def bench_grade(case_id: str, answer_format: str, speedup: bool, work: Path) -> dict:
    from harness.checks.base import CheckContext, GradeOptions
    from harness.checks.run import check_run
    from harness.checks.speedup import check_speedup
    from harness.inputs.cases import load_cases
    from harness.kernelbench.adapt import adapt_answer
    from harness.kernelbench.importer import import_kernelbench

    result = import_kernelbench(FIXTURES, work / "cases.json", levels=[1, 2], max_cpu_bytes=4 * 2 ** 20)
    case = next((c for c in load_cases(result.cases_path) if c.id == case_id), None)
    if case is None:
        raise SystemExit(f"--case {case_id}: not among the fixture cases")
    ref = result.cases_path.parent / case.model_extra["kernelbench"]["reference"]
    project = FIXTURES / "answers" / "honest_cpu"
    if answer_format == "kernelbench":
        project = work / "adapted"
        adapt_answer((FIXTURES / "answers" / "kernelbench" / "linear_load_inline.py").read_text(), ref, project)
    rows = {}
    for label in ("cold", "warm"):
        ctx = CheckContext(case=case, text="", project_dir=project, level="run", device="cpu",
                           artifacts=work / label, options=GradeOptions(reference=ref))
        t0 = time.perf_counter()
        run = check_run(ctx)
        t_run = time.perf_counter() - t0
        row = {"run": run.status, "run_s": round(t_run, 2), "build_cached": run.metrics.get("build_cached")}
        if speedup and run.status == "pass":
            ctx.prior["run"] = run
            t1 = time.perf_counter()
            timed = check_speedup(ctx)
            row.update(speedup=timed.status, speedup_s=round(time.perf_counter() - t1, 2),
                       speedup_x=timed.metrics.get("speedup"))
        row["total_s"] = round(time.perf_counter() - t0, 2)
        rows[label] = row
    return {"case": case_id, "answer_format": answer_format, **rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kernelbench_dir", nargs="?", type=Path, default=FIXTURES)
    parser.add_argument("--level", default="1")
    parser.add_argument("--problems", default="")
    parser.add_argument("--case", default="kb-l1-003-linear")
    parser.add_argument("--answer-format", choices=["project", "kernelbench"], default="project")
    parser.add_argument("--speedup", action="store_true", help="also time the case (the speedup check)")
    parser.add_argument("--skip-grade", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from harness.kernelbench.importer import parse_numbers

    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="kg-kb-bench-") as tmp:
        work = Path(tmp)
        report["import"] = bench_import(args.kernelbench_dir, parse_numbers(args.level, what="--level") or [1],
                                        parse_numbers(args.problems, what="--problems"), work / "import" / "kb.json")
        print(f"import: {report['import']['problems']} problems in {report['import']['total_s']:.1f} s "
              f"(median {report['import']['median_s']:.2f} s, mean {report['import']['mean_s']:.2f} s per problem); "
              f"counts {report['import']['counts']}; slowest {report['import']['slowest']}", flush=True)
        if not args.skip_grade:
            os.environ["KERNELGRADE_CACHE"] = str(work / "cache")  # cold: an empty compile cache
            report["grade"] = bench_grade(args.case, args.answer_format, args.speedup, work / "grade")
            print(f"grade {args.case} ({args.answer_format}): cold {report['grade']['cold']}, "
                  f"warm {report['grade']['warm']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
