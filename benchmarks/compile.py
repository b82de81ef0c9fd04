"""Compile benchmark over the reference projects (issue 5).

For each kernels_reference/<op>:
  bare    the same compiler commands the harness runs (same flags, same sources, same
          number in parallel), started directly with subprocess: no sandbox, no cache;
  cold    the harness compile check with an empty cache (sandbox, hashing, cache store);
  warm    the harness compile check again, every unit a cache hit;
  warm_cli  `kernelgrade check OP --level compile` as a process (build_toml, compile and
          sass, interpreter start-up included), against the warm cache.
Targets: cold / bare <= 1.05; cold / warm >= 50.

Besides the reference ops, the same four figures for projects on the other binding paths
(issue 25): a torch stable-ABI binding and a tvm-ffi binding, the compat fixtures
tests/fixtures/projects/compat/stable_abi and tvm_ffi by default (`--projects DIR ...`).

Usage: python benchmarks/compile.py [--ops rmsnorm softmax] [--projects DIR ...] [--jobs 1]
                                    [--overhead-rounds 10] [--json FILE]
(`--ops` and `--projects` with no name measure only the per-compile overhead.)
The cold runs use a fresh temporary cache (the CUDA math, tvm-ffi and CUTLASS headers are
copied in first and not timed); nothing touches your KERNELGRADE_CACHE.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def reference_ops() -> list[str]:
    refs = ROOT / "kernels_reference"
    return sorted(p.name for p in refs.iterdir()
                  if (p / "build.toml").is_file() and p.name not in ("bad", "cheats"))


#: A stable-ABI binding and a tvm-ffi binding (issue 25).
DEFAULT_PROJECTS = [ROOT / "tests" / "fixtures" / "projects" / "compat" / n for n in ("stable_abi", "tvm_ffi")]


def _header_folders() -> list[Path]:
    """Every header-only install in the user's cache, to copy into each fresh cold cache."""
    from harness.build.headers import ensure_math_headers, find_tvm_ffi_headers
    from harness.common.paths import cache_dir

    folders = [ensure_math_headers(), find_tvm_ffi_headers()]
    folders += sorted((cache_dir() / "cutlass-headers").glob("*/include"))
    return [f for f in folders if f is not None]


def _plan(op_dir: Path):
    """The units and build env exactly as the compile check derives them."""
    from harness.checks.base import CheckContext
    from harness.checks.compile import _build_env
    from harness.project.info import read_project
    from harness.build.builder_files import extension_name
    from harness.build.cache import content_key
    from harness.build.cuda_plan import Includes, plan_cuda
    from harness.project.sources import source_bytes

    project = read_project(op_dir)
    files = source_bytes(op_dir)
    ext = extension_name(project.name, "cuda", content_key(files=files))
    probe = plan_cuda(project, ext_name=ext, includes=Includes())
    ctx = CheckContext(case=None, text="", project_dir=op_dir, level="compile", device="cuda",
                       artifacts=Path(tempfile.mkdtemp()))
    built, reason = _build_env(ctx, probe)
    if built is None:
        raise SystemExit(f"{op_dir.name}: {reason}")
    env, includes, _ = built
    return plan_cuda(project, ext_name=ext, includes=includes), files, env


def bare(op_dir: Path, parallel: int) -> float:
    """Same commands, plain subprocess, same parallelism; sources laid out the same way."""
    from harness.build.nvcc import _populate

    plan, files, env = _plan(op_dir)
    with tempfile.TemporaryDirectory(prefix="kg-bare-") as tmp:
        work = Path(tmp)
        _populate(work, files)

        def one(unit) -> int:
            tool = env.nvcc if unit.compiler == "nvcc" else env.cxx
            return subprocess.run(unit.command(tool), cwd=work, capture_output=True).returncode

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            codes = list(pool.map(one, plan.units))
        elapsed = time.perf_counter() - start
    if any(codes):
        raise SystemExit(f"{op_dir.name}: bare compile failed {codes}")
    return elapsed


def harness_check(op_dir: Path) -> tuple[float, dict]:
    from harness.checks.base import CheckContext
    from harness.checks.compile import check_compile

    with tempfile.TemporaryDirectory(prefix="kg-art-") as art:
        ctx = CheckContext(case=None, text="", project_dir=op_dir, level="compile", device="cuda",
                           artifacts=Path(art))
        start = time.perf_counter()
        result = check_compile(ctx)
        elapsed = time.perf_counter() - start
    if result.status != "pass":
        raise SystemExit(f"{op_dir.name}: compile check {result.status}: {result.reason}")
    return elapsed, result.metrics


def cli_check(op_dir: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli.main", "check", str(op_dir), "--level", "compile", "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{op_dir.name}: kernelgrade check exited {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed


def fixed_overhead(rounds: int) -> dict:
    """The harness's own cost per compile, measured where it is easiest to see: a ~1 s
    kernel-only compile (tests/fixtures/cuda/add.cu), bare and harness interleaved,
    each harness round a cache miss (a unique -D), medians compared."""
    import statistics

    from harness.build import toolchain
    from harness.build.cache import BuildCache
    from harness.build.nvcc import BuildEnv, CompileUnit, _populate, compile_unit

    src = (ROOT / "tests" / "fixtures" / "cuda" / "add.cu").read_bytes()
    files = {"k/add.cu": src}
    nvcc = toolchain.find_nvcc().path
    env = BuildEnv(nvcc=nvcc, cxx=None, versions={"nvcc": toolchain.tool_version(nvcc)})
    base = ["-std=c++17", "-O3", "--expt-relaxed-constexpr", "-gencode", "arch=compute_90,code=sm_90",
            "-Isrc", "-Ikg_include", "-Xptxas", "-v"]
    bare_t, harness_t = [], []
    with tempfile.TemporaryDirectory(prefix="kg-ovh-") as tmp:
        cache = BuildCache("overhead", root=Path(tmp) / "cache")
        work = Path(tmp) / "bare"
        _populate(work, files)
        for i in range(rounds):
            unit = CompileUnit(rel="k/add.cu", compiler="nvcc", flags=[*base, f"-DKG_ROUND={i}"], kind="kernel",
                               kernel="k", arches=["sm_90"])
            start = time.perf_counter()
            subprocess.run(unit.command(nvcc), cwd=work, capture_output=True, check=True)
            bare_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = compile_unit(unit, files, env, cache=cache)
            harness_t.append(time.perf_counter() - start)
            assert result.ok and not result.cache_hit
    b, h = statistics.median(bare_t), statistics.median(harness_t)
    return {"rounds": rounds, "bare_median_s": round(b, 3), "harness_median_s": round(h, 3),
            "overhead_ms": round((h - b) * 1000, 1), "ratio": round(h / b, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description="harness compile overhead and cache speed-up")
    parser.add_argument("--ops", nargs="*", default=None)
    parser.add_argument("--projects", nargs="*", type=Path, default=None,
                        help="project folders measured after the ops (default: the stable-ABI and tvm-ffi fixtures)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--overhead-rounds", type=int, default=10,
                        help="rounds of the per-compile overhead measurement (0: skip)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="compiles at once for both bare and harness (default: the harness's bound)")
    args = parser.parse_args()
    from harness.build.headers import ensure_math_headers
    from harness.build.nvcc import default_parallel

    if args.jobs:
        os.environ["KERNELGRADE_COMPILE_JOBS"] = str(args.jobs)
    from harness.common.paths import cache_dir

    ensure_math_headers()
    user_cache = cache_dir()
    headers = _header_folders()  # from the user's cache: not part of any timing
    parallel = default_parallel()
    rows = []
    overhead = None
    if args.overhead_rounds:
        overhead = fixed_overhead(args.overhead_rounds)
        print(f"per-compile overhead (kernel-only add.cu, {overhead['rounds']} rounds, medians): bare "
              f"{overhead['bare_median_s']:.3f}s harness {overhead['harness_median_s']:.3f}s "
              f"(+{overhead['overhead_ms']:.0f} ms, x{overhead['ratio']:.3f})", flush=True)
    targets = [(op, ROOT / "kernels_reference" / op) for op in (reference_ops() if args.ops is None else args.ops)]
    targets += [(p.name, p.resolve()) for p in (DEFAULT_PROJECTS if args.projects is None else args.projects)]
    for index, (op, op_dir) in enumerate(targets):
        with tempfile.TemporaryDirectory(prefix="kg-bench-cache-") as cache:
            os.environ["KERNELGRADE_CACHE"] = cache
            for folder in headers:  # ones found outside the cache (a full toolkit) are found there again
                if folder.is_relative_to(user_cache):
                    shutil.copytree(folder, Path(cache) / folder.relative_to(user_cache))
            # Alternate which goes first, so neither always gets the warmer page cache.
            if index % 2 == 0:
                t_bare = bare(op_dir, parallel)
                t_cold, metrics = harness_check(op_dir)
            else:
                t_cold, metrics = harness_check(op_dir)
                t_bare = bare(op_dir, parallel)
            assert metrics["units_cached"] == 0
            t_warm, metrics_w = harness_check(op_dir)
            assert metrics_w["cache_hit"] is True
            env = dict(os.environ, KERNELGRADE_HOME=tempfile.mkdtemp(prefix="kg-home-"))
            os.environ.update(env)
            t_cli = cli_check(op_dir)
        row = {"op": op, "units": metrics["units"], "parallel": parallel, "bare_s": round(t_bare, 2),
               "cold_s": round(t_cold, 2), "warm_s": round(t_warm, 4), "warm_cli_s": round(t_cli, 2),
               "cold_over_bare": round(t_cold / t_bare, 3), "cold_over_warm": round(t_cold / t_warm, 1)}
        rows.append(row)
        print(f"{op:<12} units={row['units']} bare={row['bare_s']:.1f}s cold={row['cold_s']:.1f}s "
              f"(x{row['cold_over_bare']:.3f} of bare, target <= 1.05) warm={row['warm_s']:.3f}s "
              f"(cold/warm x{row['cold_over_warm']:.0f}, target >= 50) warm CLI={row['warm_cli_s']:.2f}s",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"overhead": overhead, "ops": rows}, indent=1))
    if not rows:
        return 0
    tot_bare = sum(r["bare_s"] for r in rows)
    tot_cold = sum(r["cold_s"] for r in rows)
    tot_warm = sum(r["warm_s"] for r in rows)
    print(f"{'total':<12} bare={tot_bare:.1f}s cold={tot_cold:.1f}s (x{tot_cold / tot_bare:.3f}) "
          f"warm={tot_warm:.3f}s (cold/warm x{tot_cold / tot_warm:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
