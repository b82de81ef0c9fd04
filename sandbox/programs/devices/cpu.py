"""CPU strategy: perf_counter_ns, a >= 2x LLC flush (written by the parent, between calls,
out of the candidate's reach: harness/execute/flush.py), evidence = the extension's op was
dispatched, no synchronisation needed (CPU ops return when done)."""

from __future__ import annotations

import glob
import time

from sandbox.programs.devices.base import Evidence

_perf_counter_ns = time.perf_counter_ns  # bound at import, before any candidate code runs
FALLBACK_LLC_BYTES = 32 * 1024 * 1024


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(text[-1:], 1)
    return int(text.rstrip("KMG") or 0) * mult


def llc_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Size of the highest cache level (sysfs index*/level + size); a fallback if unreadable."""
    best_level, best_size = -1, 0
    for index in glob.glob(f"{root}/index*"):
        try:
            with open(f"{index}/level") as fh:
                level = int(fh.read().strip())
            with open(f"{index}/size") as fh:
                size = _parse_size(fh.read())
        except (OSError, ValueError):
            continue
        if level > best_level or (level == best_level and size > best_size):
            best_level, best_size = level, size
    return best_size or FALLBACK_LLC_BYTES


class _CpuTimer:
    def __init__(self) -> None:
        self._t0 = 0

    def start(self) -> None:
        self._t0 = _perf_counter_ns()

    def stop(self) -> int:
        return _perf_counter_ns() - self._t0


class CpuDevice:
    name = "cpu"
    default_timed_iters = 20
    default_warmup = 3
    default_rounds = 2

    def __init__(self) -> None:
        self._wake = None

    def available(self) -> bool:
        return True

    def sync(self) -> None:
        """CPU kernels (at::parallel_for included) have finished when the call returns."""

    def timer(self) -> _CpuTimer:
        return _CpuTimer()

    def flush_bytes(self) -> int:
        return 2 * llc_bytes()

    def flush(self, i: int) -> None:
        """Never asked for on CPU: the parent writes its own buffer between calls."""

    def wake(self) -> None:
        """Wake torch's worker threads before a timed call (they fall asleep while the parent
        flushes): a parallel fill of one small block per thread, bound before the candidate
        is imported. Skipping it could only make the candidate's own calls slower."""
        import torch

        if self._wake is None:
            self._wake = torch.empty(max(2, torch.get_num_threads()) * 32768, dtype=torch.uint8)
        self._wake.fill_(0)

    def to_device(self, t):
        return t

    def to_host(self, t):
        return t

    def profiler_activities(self) -> list:
        from torch.profiler import ProfilerActivity

        return [ProfilerActivity.CPU]

    def evidence(self, events: list[dict], ext_namespace: str) -> Evidence:
        ours = sorted({e["name"] for e in events if e["name"].startswith(ext_namespace + "::")})
        if ours:
            return Evidence(True, f"dispatched {', '.join(ours)}")
        return Evidence(False, f"no op of the extension ({ext_namespace}::*) was dispatched")
