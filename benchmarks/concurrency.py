"""Throughput of the eval executor against the bare SDK, side by side in one run, against a
local OpenAI-protocol server that answers after a fixed delay (a labelled fixture,
tests/fakes/openai_server.py, in its own process so it does not share the harness's GIL).

For each concurrency (default 16 and 64): max(--trials, 10 x concurrency) text trials (cases x
2 arms, the fixture skill), and the bare SDK making the very same calls (the same prompts,
through the same sync client in as many threads) with nothing around them: no store, no
grading. Both are warmed up first, then timed --reps times in alternating order; the figure
is the ratio of median walls, bare / harness (1.0: the harness costs nothing; target >= 0.97).
The harness runs as `eval` would by default: from concurrency 32 on a machine of 2 cores or
more it makes the calls in worker processes (harness/models/call_pool.py, "call procs"),
started in the warm-up as the bare client is made before it. Beside it, the CPU time per
trial (the harness's own work plus the SDK's, its worker processes included; the fixture
server is another process), the figure that stays put when other jobs load the machine and
the walls swing. More CPU in all with a higher throughput is the trade the pool makes.

    .venv/bin/python benchmarks/concurrency.py [--concurrency 16,64] [--trials 200] [--delay 0.05] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SKILL = REPO / "tests/fixtures/skills/valid-skill"
TARGET = 0.97


def _cases(folder: Path, n_cases: int) -> Path:
    path = folder / f"cases-{n_cases}.json"
    path.write_text(json.dumps({"cases": [{"id": f"c{i}", "input": f"case {i}: which capability?",
                                           "expected": {"contains": "9.0"}} for i in range(n_cases)]}))
    return path


def _workers_cpu() -> float:
    """CPU seconds of the harness's model-call worker processes (harness/models/call_pool.py)."""
    from harness.models.call_pool import shared_worker_pids

    total = 0.0
    for pid in shared_worker_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _harness(store, base_url: str, cases: Path, concurrency: int) -> tuple[float, float]:
    from harness.workflows.evaluate import EvalOptions, execute, start_eval

    run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["fake"], base_url=base_url,
                                    level="text", concurrency=concurrency), store)
    t0, c0 = time.perf_counter(), time.process_time() + _workers_cpu()
    execute(run_id, store)
    wall, cpu = time.perf_counter() - t0, time.process_time() + _workers_cpu() - c0
    assert all(t.status == "answered" for t in store.trials(run_id)), "a harness call failed"
    return wall, cpu


def _bare_calls(cases: Path) -> list[list[dict]]:
    """The messages the harness sends for these cases, both arms (built outside any timing)."""
    from harness.inputs.cases import load_cases
    from harness.workflows.evaluate import skill_record
    from harness.prompts.build import build_prompt

    block = skill_record(SKILL)["block"]
    out = []
    for case in load_cases(cases):
        for skill in (None, block):
            p = build_prompt(case, skill)
            out.append([{"role": "system", "content": p.system}, {"role": "user", "content": p.user}])
    return out


def _bare(client, calls: list[list[dict]], concurrency: int) -> tuple[float, float]:
    from concurrent.futures import ThreadPoolExecutor

    def call(messages: list[dict]) -> None:
        client.chat.completions.create(model="fake", max_tokens=4096, temperature=1.0, messages=messages)

    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, calls))
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KERNELGRADE_HOME"] = tmp
        import openai

        from harness.models.call_pool import auto_processes
        from harness.store.db import Store

        server = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--delay", str(args.delay)],
                                  cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            base_url = server.stdout.readline().strip()
            store = Store()
            print(f"fixture server delay {args.delay * 1e3:.0f} ms, {os.cpu_count()} CPUs, {args.reps} timed reps "
                  "each, alternating; walls are medians")
            print(f"{'concurrency':>11} {'trials':>7} {'ideal s':>8} {'harness s':>10} {'bare SDK s':>11} "
                  f"{'call procs':>10} {'harness/ideal':>14} {'bare/ideal':>11} {'harness vs bare':>16} "
                  f"{'CPU ms/trial h|b':>17}"
                  "  per-rep ratios")
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                n = max(args.trials, 10 * concurrency)
                cases = _cases(Path(tmp), n // 2)
                calls = _bare_calls(cases)
                client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
                _harness(store, base_url, _cases(Path(tmp), concurrency), concurrency)  # warm-up, untimed
                _bare(client, calls[:concurrency * 2], concurrency)
                walls: dict[str, list[float]] = {"harness": [], "bare": []}
                cpus: dict[str, list[float]] = {"harness": [], "bare": []}
                for rep in range(args.reps):
                    order = ("harness", "bare") if rep % 2 == 0 else ("bare", "harness")
                    for who in order:
                        wall, cpu = (_harness(store, base_url, cases, concurrency) if who == "harness"
                                     else _bare(client, calls, concurrency))
                        walls[who].append(wall)
                        cpus[who].append(cpu * 1e3 / n)
                ideal = n / concurrency * args.delay
                h, b = statistics.median(walls["harness"]), statistics.median(walls["bare"])
                per_rep = " ".join(f"{bw / hw:.2f}" for hw, bw in zip(walls["harness"], walls["bare"]))
                print(f"{concurrency:>11} {n:>7} {ideal:>8.3f} {h:>10.3f} {b:>11.3f} "
                      f"{auto_processes(concurrency):>10} {ideal / h:>14.3f} "
                      f"{ideal / b:>11.3f} {b / h:>16.3f} "
                      f"{statistics.median(cpus['harness']):>8.2f}|{statistics.median(cpus['bare']):<8.2f}  {per_rep}")
        finally:
            server.kill()
    print(f"harness vs bare SDK: throughput ratio (bare wall / harness wall), target >= {TARGET}")


if __name__ == "__main__":
    main()
