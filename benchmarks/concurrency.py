"""Throughput of the eval executor against a local OpenAI-protocol server that answers
after a fixed delay (a labelled fixture, tests/fakes/openai_server.py).

200 trials (100 text cases x 2 arms x 1 run) at --concurrency 16 with a 50 ms server
delay: ideal wall time = 200 / 16 x 50 ms. Prints achieved/ideal throughput (target
>= 0.9) and the harness overhead per trial (prompt build, SQLite writes before and after
the call, grading, the SDK's HTTP round trip beyond the 50 ms).

    .venv/bin/python benchmarks/concurrency.py [--trials 200] [--concurrency 16] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _bare_sdk(base_url: str, *, n_calls: int, concurrency: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    import openai

    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)

    def call(i: int) -> None:
        client.chat.completions.create(model="fake", max_tokens=64, messages=[
            {"role": "system", "content": "s"}, {"role": "user", "content": f"case {i}: which capability?"}])

    call(-1)  # connection set-up outside the timing, as for the harness run
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, range(n_calls)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--delay", type=float, default=0.05)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KERNELGRADE_HOME"] = tmp
        t_import = time.perf_counter()
        import harness.models.openai_compat  # noqa: F401  (the SDK import is a one-off ~1 s)

        t_import = time.perf_counter() - t_import
        from harness.workflows.evaluate import EvalOptions, execute, start_eval
        from harness.store.db import Store

        n_cases = args.trials // 2
        cases = Path(tmp) / "cases.json"
        cases.write_text(json.dumps({"cases": [{"input": f"case {i}: which capability?",
                                                "expected": {"contains": "9.0"}} for i in range(n_cases)]}))
        # The server runs in its own process so it does not compete for the harness's GIL.
        server = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--delay", str(args.delay)],
                                  cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            base_url = server.stdout.readline().strip()
            store = Store()
            run_id = start_eval(EvalOptions(
                skill_dir=REPO / "tests/fixtures/skills/valid-skill", cases_path=cases, models=["fake"],
                base_url=base_url, level="text", concurrency=args.concurrency), store)
            t0 = time.perf_counter()
            execute(run_id, store)
            wall = time.perf_counter() - t0
            # Baseline on the same server: the bare SDK, same concurrency, no harness around it.
            # The difference between the two is what the harness adds; the bare ratio shows
            # what the fixture server and the SDK cost on this machine.
            raw_wall = _bare_sdk(base_url, n_calls=args.trials, concurrency=args.concurrency)
        finally:
            server.kill()
        trials = store.trials(run_id)
        n = len(trials)
        calls = sum(t.calls for t in trials)
        ideal = n / args.concurrency * args.delay
        answered = sum(t.status == "answered" for t in trials)
    print(f"one-off start-up: importing the openai SDK took {t_import:.2f} s (not in the wall time below)")
    print(f"trials: {n} ({calls} model calls), {answered} answered, concurrency {args.concurrency}, server delay {args.delay * 1e3:.0f} ms")
    print(f"wall: {wall:.3f} s   ideal: {ideal:.3f} s")
    print(f"achieved/ideal throughput: {ideal / wall:.3f}  (target >= 0.9)")
    print(f"harness overhead per trial: {(wall - ideal) * args.concurrency / n * 1e3:.1f} ms "
          f"(wall beyond ideal, spread over the {args.concurrency} workers)")
    print(f"bare SDK, same server and concurrency: wall {raw_wall:.3f} s, achieved/ideal {ideal / raw_wall:.3f}")
    print(f"harness vs bare SDK throughput: {raw_wall / wall:.3f}  "
          f"(what storing, grading and scheduling cost on top of the calls themselves)")


if __name__ == "__main__":
    main()
