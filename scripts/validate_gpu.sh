#!/usr/bin/env bash
# Issue 6's validation on a CUDA host (an H100), in one command:
#
#   KG_SYSTEM_SITE=1 scripts/setup.sh     # once; keeps the host's torch (e.g. 2.11.0+cu130)
#   scripts/validate_gpu.sh [REPORT.md]   # default: validation-<UTC date>.md
#
# Records device (nvidia-smi), date, git commit and versions, then:
#   0. benchmarks/limits.py: the part as identified in the table of sm_90 parts, its measured copy
#      bandwidth and dense BF16 matmul, the limits the floor and the roofline use (issue 22);
#   1. kernelgrade check kernels_reference/<op> --level run --device cuda --json, for every reference op
#      (correctness, speedup, % of the device's bandwidth limit, the device it was measured on);
#   2. every project in kernels_reference/cheats/: it must fail with the reason in its EXPECTED.txt
#      (run with --device cuda when its build.toml has a CUDA kernel, else --device cpu);
#   3. pytest -m gpu;
#   4. benchmarks/gpu_timing.py: our timing vs triton.testing.do_bench.
# Raw outputs go to REPORT's name without .md, plus .d/. KG_PYTHON picks the interpreter
# (default .venv/bin/python). Exit: 0 everything held, 1 something failed (the report says
# what), 2 no CUDA device or no Python (one line, nothing run).
set -uo pipefail
cd "$(dirname "$0")/.."

py=${KG_PYTHON:-.venv/bin/python}
if [[ ! -x $py ]]; then
  echo "no Python at $py: run KG_SYSTEM_SITE=1 scripts/setup.sh first, or set KG_PYTHON" >&2
  exit 2
fi
# One line on stderr ("needs a CUDA device: ...") and exit 2 when there is none.
"$py" benchmarks/gpu_timing.py --probe >/dev/null || exit 2

report=${1:-validation-$(date -u +%Y-%m-%d).md}
raw=${report%.md}.d
mkdir -p "$raw"
export KERNELGRADE_HOME=${KERNELGRADE_HOME:-$PWD/$raw/home}
failed=()
say() { printf '%s\n' "$*" | tee -a "$report"; }

: > "$report"
say "# kernelgrade GPU validation"
say ""
if commit=$(git rev-parse HEAD 2>/dev/null); then
  git diff --quiet HEAD -- || commit+=" (with uncommitted changes)"
else
  commit="unknown (not a git checkout)"
fi
say "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(uname -n)"
say "- commit: $commit"
versions='import sys, torch
print(f"Python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"device {torch.cuda.get_device_name(0)}")'
nvcc='from harness.build.toolchain import find_nvcc, tool_version
t = find_nvcc()
print(f"{t.path}: {(tool_version(t.path) or chr(63)).splitlines()[-1]}" if t else "not found")'
say "- $("$py" -c "$versions")"
say "- nvcc: $("$py" -c "$nvcc" 2>&1 | tail -n 1)"
say "- raw outputs: $raw/"
say ""
say '```'
say "$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1)"
say '```'

# Markdown rows from `kernelgrade check --json` outputs: reference ops, or cheats against EXPECTED.txt.
summarise() {
  "$py" - "$@" <<'PY'
import json, sys
from pathlib import Path

mode, files = sys.argv[1], sys.argv[2:]
def fmt(v, spec):
    return "" if v is None else format(v, spec)
if mode == "ops":
    print("| op | exit | checks | max_abs_err | speedup | ours us | reference us | % of BW limit | limit GB/s (basis) | device | GFLOP/s | first problem |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
else:
    print("| cheat | device | expected reason | exit | run | caught | run reason |")
    print("|---|---|---|---|---|---|---|")
for f in files:
    path = Path(f)
    try:
        out = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        err_tail = path.with_suffix(".err").read_text(errors="replace").strip().splitlines()[-1:] if path.with_suffix(".err").exists() else []
        print(f"| {path.stem} | no JSON | {err_tail[0][:150] if err_tail else err} |")
        continue
    res = {r["name"]: r for r in out["results"]}
    if mode == "ops":
        run, sp = res.get("run", {}).get("metrics") or {}, res.get("speedup", {}).get("metrics") or {}
        checks = " ".join(f"{n}={r['status']}" for n, r in res.items())
        bad = next((f"{n}: {r['reason']}" for n, r in res.items() if r["status"] != "pass"), "")
        bw = sp.get("bandwidth_fraction")
        print(f"| {path.stem} | {out['exit_code']} | {checks} | {fmt(run.get('max_abs_err'), '.3g')} | "
              f"{fmt(sp.get('speedup'), '.2f')} | {fmt(sp.get('candidate_median_us'), '.2f')} | "
              f"{fmt(sp.get('reference_median_us'), '.2f')} | {fmt(bw and 100 * bw, '.1f')} | "
              f"{fmt(sp.get('bandwidth_limit_gbs'), '.0f')} ({sp.get('bandwidth_limit_basis') or 'H100 constant'}) | "
              f"{sp.get('limits_device') or ''} | {fmt(sp.get('gflops'), '.4g')} | {bad[:200]} |")
    else:
        name = path.stem.removeprefix("cheat-")
        expected = [ln for ln in (Path("kernels_reference/cheats") / name / "EXPECTED.txt").read_text().splitlines() if ln.strip() and not ln.startswith("check:")][-1].strip()
        run = res.get("run", {"status": "missing", "reason": ""})
        scan = res.get("scan", {"status": "missing", "reason": ""})
        # Caught when run fails for the expected reason, or when the static scan already
        # failed it (run is then blocked: the scan's reason is shown instead).
        by_run = run["status"] == "fail" and expected in run["reason"]
        by_scan = scan["status"] == "fail"
        caught = out["exit_code"] == 1 and (by_run or by_scan)
        shown = f"scan: {scan['reason']}" if by_scan else run["reason"]
        print(f"| {name} | {out['device']} | {expected} | {out['exit_code']} | {run['status']} | "
              f"{('yes (scan)' if by_scan else 'yes') if caught else 'NO'} | {shown[:200]} |")
PY
}

say ""
say "## 0. Limits of this device (benchmarks/limits.py)"
echo "[validate] limits" >&2
"$py" benchmarks/limits.py --repeats 3 --json "$raw/limits.json" >"$raw/limits.txt" 2>&1
rc=$?
[[ $rc == 0 ]] || failed+=("limits (exit $rc)")
say '```'
say "$(cat "$raw/limits.txt")"
say '```'

say ""
say "## 1. Reference ops: kernelgrade check --level run --device cuda"
ops=$("$py" -c 'import sys; sys.path.insert(0, "benchmarks"); from gpu_timing import reference_ops; print(*reference_ops())')
for op in $ops; do
  echo "[validate] check $op" >&2
  "$py" -m harness.cli.main check "kernels_reference/$op" --level run --device cuda --json >"$raw/$op.json" 2>"$raw/$op.err"
  rc=$?
  [[ $rc == 0 ]] || failed+=("check $op (exit $rc)")
done
say "$(summarise ops $(printf "$raw/%s.json " $ops))"

say ""
say "## 2. Cheat projects (must fail with the reason in EXPECTED.txt)"
cheat_files=()
for dir in kernels_reference/cheats/*/; do
  name=$(basename "$dir")
  [[ -f $dir/EXPECTED.txt ]] || continue
  dev=cpu; grep -q 'backend *= *"cuda"' "$dir/build.toml" && dev=cuda
  op=$(grep -o 'kernels_reference/[a-z_0-9]*' "$dir/README.md" | head -n 1 | cut -d/ -f2)
  echo "[validate] cheat $name ($dev, reference ${op:-rmsnorm})" >&2
  "$py" -m harness.cli.main check "$dir" --level run --device "$dev" --op "${op:-rmsnorm}" --json \
    >"$raw/cheat-$name.json" 2>"$raw/cheat-$name.err"
  cheat_files+=("$raw/cheat-$name.json")
done
table=$(summarise cheats "${cheat_files[@]}")
say "$table"
grep -q '| NO |' <<<"$table" && failed+=("a cheat was not caught")

say ""
say "## 3. pytest -m gpu"
echo "[validate] pytest -m gpu" >&2
"$py" -m pytest -m gpu -q -rs -p no:cacheprovider >"$raw/pytest.txt" 2>&1
rc=$?
[[ $rc == 0 ]] || failed+=("pytest -m gpu (exit $rc)")
say '```'
say "$(tail -n 25 "$raw/pytest.txt")"
say '```'

say ""
say "## 4. Timing: ours vs triton.testing.do_bench (benchmarks/gpu_timing.py)"
echo "[validate] benchmarks/gpu_timing.py" >&2
"$py" benchmarks/gpu_timing.py --markdown "$raw/timing.md" --json "$raw/timing.json" >"$raw/timing.txt" 2>&1
rc=$?
[[ $rc == 0 ]] || failed+=("gpu_timing (exit $rc)")
if [[ -s $raw/timing.md ]]; then say "$(cat "$raw/timing.md")"; else say '```'; say "$(tail -n 25 "$raw/timing.txt")"; say '```'; fi

say ""
if ((${#failed[@]})); then
  say "## Result: FAILED: $(printf '%s; ' "${failed[@]}")"
  exit 1
fi
say "## Result: every step held"
