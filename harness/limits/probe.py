"""Measure a device's limits. Trusted code only (no candidate is loaded), run by the harness as
a subprocess (`python probe.py cpu --threads N`, `python probe.py cuda-identify`, `python probe.py cuda`)
in the lane where the timing runs, so it sees the same cores, threads and GPU. It prints one
JSON object. Standalone on purpose: it needs torch and the standard library, nothing of kernelgrade.

- cpu: a STREAM-like copy (dst.copy_(src), each array >= 4x the last-level cache, best of the
  trials, bytes counted as STREAM does: one read plus one write) with torch's intra-op threads
  set to the timing's count.
- cuda-identify: name, SM count, memory, UUID, driver, SM clock.
- cuda: device-to-device copy bandwidth (cudaMemcpy of 1 GiB via copy_, best of trials, timed
  with CUDA events) and dense BF16 matmul throughput (torch.mm, 8192^3, best of trials).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

MIB = 1024 * 1024


def llc_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Size of the last-level cache from sysfs (32 MiB when unreadable)."""
    best = (-1, 0)
    for index in glob.glob(f"{root}/index*"):
        try:
            level = int(open(f"{index}/level").read())
            text = open(f"{index}/size").read().strip().upper()
        except (OSError, ValueError):
            continue
        size = int(text.rstrip("KMG") or 0) * {"K": 1024, "M": MIB, "G": 1024 * MIB}.get(text[-1:], 1)
        best = max(best, (level, size))
    return best[1] or 32 * MIB


def stream_copy_bytes(llc: int, *, cap: int = 512 * MIB) -> int:
    """Array size for the copy: STREAM's rule (>= 4x the LLC), at least 64 MiB, at most `cap`."""
    return min(cap, max(64 * MIB, 4 * llc))


def cpu_copy(threads: int, *, nbytes: int | None = None, trials: int = 8, rounds: int = 3,
             pause_s: float = 0.15) -> dict:
    """Best of `rounds` x `trials` copies, the rounds `pause_s` apart: on shared cores a burst of
    copies can land entirely inside another job's burst, and the limit wants the quiet figure."""
    import torch

    torch.set_num_threads(threads)
    nbytes = nbytes or stream_copy_bytes(llc_bytes())
    src = torch.ones(nbytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch: pages mapped before timing
    times = []
    for r in range(rounds):
        if r:
            time.sleep(pause_s)
        for _ in range(trials):
            t0 = time.perf_counter_ns()
            dst.copy_(src)
            times.append(time.perf_counter_ns() - t0)
    trials = len(times)
    best = min(times)
    times.sort()
    return {"copy_bytes_per_s": 2 * src.numel() * 4 / (best / 1e9), "array_bytes": src.numel() * 4,
            "trials": trials, "best_ns": best, "median_ns": times[len(times) // 2],
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def _driver_version(torch) -> str:
    try:
        text = open("/proc/driver/nvidia/version").read()
        for word in text.split():
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                return word
    except OSError:
        pass
    try:
        return f"cuda-driver-api-{torch._C._cuda_getDriverVersion()}"
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def _clock_mhz() -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        index = int((os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0])
        return int(pynvml.nvmlDeviceGetMaxClockInfo(pynvml.nvmlDeviceGetHandleByIndex(index), pynvml.NVML_CLOCK_SM))
    except Exception:  # noqa: BLE001 - pynvml is optional; a UUID-named device has no index
        return None


def cuda_identify() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"name": None, "why": "no CUDA device visible to torch " + torch.__version__}
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "sms": props.multi_processor_count, "total_memory": props.total_memory,
            "major": props.major, "minor": props.minor, "uuid": str(getattr(props, "uuid", "")),
            "driver": _driver_version(torch), "clock_mhz": _clock_mhz(), "torch": torch.__version__}


def _best_cuda_ms(fn, trials: int) -> float:
    import torch

    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(trials):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end))
    return best


def cuda_measure(*, copy_bytes: int = 1024 * MIB, n: int = 8192, trials: int = 20) -> dict:
    import torch

    src = torch.ones(copy_bytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = _best_cuda_ms(lambda: dst.copy_(src), trials)
    del src, dst
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    mm_ms = _best_cuda_ms(lambda: torch.mm(a, b, out=c), max(5, trials // 2))
    return {"copy_bytes_per_s": 2 * copy_bytes / (copy_ms / 1e3), "copy_array_bytes": copy_bytes,
            "bf16_flops_per_s": 2 * n ** 3 / (mm_ms / 1e3), "matmul_n": n, "trials": trials,
            **cuda_identify()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cpu", "cuda-identify", "cuda"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--array-mib", type=int, default=None)
    args = parser.parse_args(argv)
    if args.what == "cpu":
        import torch

        threads = args.threads or torch.get_num_threads()
        out = cpu_copy(threads, nbytes=args.array_mib * MIB if args.array_mib else None)
    elif args.what == "cuda-identify":
        out = cuda_identify()
    else:
        out = cuda_measure()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
