"""The limits kernelgrade measures on this machine (issue 22), printed with what they are.

CPU: the STREAM-like copy bandwidth (harness/limits/probe.py) with the threads a CPU timing
uses, measured --repeats times afresh (not from the cache) so its spread is visible; the
figure the floor uses is the cached one (`<kernelgrade home>/limits/`). CUDA (where a GPU is
visible): the part as identified in the table, the measured device-to-device copy and dense BF16
matmul, and the limits the floor and the roofline use. A CPU figure is never a GPU figure: each
line names its device.

    .venv/bin/python benchmarks/limits.py [--repeats 5] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.limits import device as dev  # noqa: E402
from harness.limits.device import cpu_limits, cuda_limits, props_from  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: as a CPU timing (OMP_NUM_THREADS or cores)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    threads = args.threads or dev.timing_threads()
    model = dev.cpu_model()
    runs = [dev.run_probe("cpu", "--threads", str(threads)) for _ in range(args.repeats)]
    figures = [r["copy_bytes_per_s"] for r in runs if r]
    out: dict = {"cpu": {"model": model, "threads": threads, "copy_bytes_per_s": figures}}
    if figures:
        med = statistics.median(figures)
        print(f"CPU {model}, {threads} threads: STREAM-like copy {med / 1e9:,.1f} GB/s median of {len(figures)} "
              f"(min {min(figures) / 1e9:,.1f}, max {max(figures) / 1e9:,.1f}); array "
              f"{runs[0]['array_bytes'] / 2**20:.0f} MiB, best of {runs[0]['trials']} copies each")
        lim = cpu_limits(model, threads, {"copy_bytes_per_s": max(figures), "threads": threads})
        print(f"  floor limit: {lim.bandwidth.value / 1e9:,.1f} GB/s ({lim.bandwidth.basis}: {lim.bandwidth.what})")
    else:
        print("CPU probe failed (see the log)")
    ident = dev.run_probe("cuda-identify", timeout_s=120)
    if not ident or not ident.get("name"):
        print(f"CUDA: {(ident or {}).get('why', 'no device visible')}; nothing measured on a GPU")
    else:
        measured = dev.run_probe("cuda")
        lim = cuda_limits(props_from(ident), measured)
        out["cuda"] = {"identify": ident, "measured": measured, "limits": lim.model_dump()}
        print(f"GPU {lim.name} ({ident['sms']} SMs, {ident['total_memory'] / 2**30:.1f} GiB, driver {ident['driver']}): "
              f"part {lim.part or 'not in the table'}")
        if measured:
            print(f"  measured: copy {measured['copy_bytes_per_s'] / 1e9:,.0f} GB/s, dense BF16 matmul "
                  f"{measured['bf16_flops_per_s'] / 1e12:,.1f} TFLOP/s")
        for limit in (lim.bandwidth, lim.compute):
            shown = "-" if limit.value is None else f"{limit.value / 1e12:,.3f} T{'B' if limit.kind == 'bandwidth' else 'FLOP'}/s"
            print(f"  {limit.kind} limit: {shown} ({limit.basis}: {limit.what})")
        if lim.note:
            print(f"  note: {lim.note}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0 if figures else 1


if __name__ == "__main__":
    raise SystemExit(main())
