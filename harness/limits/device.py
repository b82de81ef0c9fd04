"""The limits of the device a timing runs on: looked up in the table of sm_90 parts
(harness.limits.parts), measured once per device and cached, and combined.

- CUDA: the part is identified (name, SM count, memory, driver) in a probe subprocess on the
  GPU the timing uses; device-to-device copy bandwidth and dense BF16 matmul throughput are
  measured once per device and driver. Each limit is the larger of table and measured; a part
  not in the table gets the measured figures only, and says so.
- CPU: a STREAM-like copy bandwidth measured with the threads the timing uses (OMP_NUM_THREADS
  and the core affinity, which the sandboxed child inherits), once per CPU model and thread
  count. There is no table of CPUs, and no compute limit.

Measurements are cached under the kernelgrade home (`<data dir>/limits/KEY.json`); delete a file
to measure again. A CPU's entry is checked again after CPU_RECHECK_S and the larger figure kept. The probe runs trusted code only (harness/limits/probe.py).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from harness.common.paths import data_dir
from harness.limits.parts import PARTS, DeviceProps, Match, identify

log = logging.getLogger(__name__)
PROBE = Path(__file__).with_name("probe.py")
PROBE_TIMEOUT_S = 600
CPU_RECHECK_S = 3600.0
"""A CPU's cached copy bandwidth is measured again after this long and the larger figure kept: shared
cores under another job's load measure low, and a low limit would put the floor too high."""


class Limit(BaseModel):
    """One physical limit of one device: the figure used and where it comes from."""

    kind: Literal["bandwidth", "compute"]
    value: float | None = None
    """Bytes/s (bandwidth) or FLOP/s (compute) used as the limit; None when nothing is known."""
    table: float | None = None
    """The table's figure for the part; None when the part is not in the table."""
    measured: float | None = None
    """This device's measured figure; None when not measured."""
    basis: Literal["table", "measured", "none"] = "none"
    """Which of the two `value` is (the larger)."""
    what: str = ""
    """What the figure is, e.g. 'peak HBM bandwidth, H200 SXM (NVIDIA H200 datasheet)'."""


class DeviceLimits(BaseModel):
    """Everything the floor and the roofline need about the device a timing ran on."""

    device: Literal["cpu", "cuda"]
    name: str
    """The device as the report names it, e.g. 'NVIDIA H200' or 'CPU AMD EPYC, 2 threads'."""
    key: str
    """Cache key: device identity and driver (CUDA) or CPU model and threads (CPU)."""
    part: str | None = None
    """The table's row ('H200 SXM'); None on CPU or for a part not in the table."""
    note: str = ""
    """Why there is no table row or no measurement, shown in the report."""
    bandwidth: Limit
    compute: Limit
    measured_at: str | None = None


def combine(kind: Literal["bandwidth", "compute"], *, table: float | None, measured: float | None,
            table_what: str = "", measured_what: str = "") -> Limit:
    """The larger of table and measured (pure). Only what exists counts."""
    if table is None and measured is None:
        return Limit(kind=kind, what="not known")
    if measured is not None and (table is None or measured > table):
        return Limit(kind=kind, value=measured, table=table, measured=measured, basis="measured", what=measured_what)
    return Limit(kind=kind, value=table, table=table, measured=measured, basis="table", what=table_what)


def cuda_limits(props: DeviceProps, measured: dict | None) -> DeviceLimits:
    """Combine the table's row (when `props` matches one) with a measurement (pure)."""
    match: Match = identify(props)
    part = match.part
    measured = measured or {}
    note = "" if part else f"not in the table of sm_90 parts ({match.reason}): measured limits only"
    if not measured:
        note = "; ".join(x for x in (note, "no measurement: table figures only" if part else "not measured") if x)
    table_src = f"{part.name} ({part.source})" if part else ""
    bw = combine("bandwidth", table=part.bandwidth if part else None, measured=measured.get("copy_bytes_per_s"),
                 table_what=f"peak memory bandwidth, {table_src}",
                 measured_what="device-to-device copy (read + write)")
    fl = combine("compute", table=part.bf16_dense if part else None, measured=measured.get("bf16_flops_per_s"),
                 table_what=f"dense BF16 tensor peak, {table_src}",
                 measured_what=f"dense BF16 matmul ({measured.get('matmul_n', '?')}^3)")
    return DeviceLimits(device="cuda", name=props.name, key=cuda_key(props), part=part.name if part else None,
                        note=note, bandwidth=bw, compute=fl, measured_at=measured.get("measured_at"))


def cpu_limits(model: str, threads: int, measured: dict | None) -> DeviceLimits:
    """The CPU's limits from its STREAM-like copy measurement (pure)."""
    bw_value = (measured or {}).get("copy_bytes_per_s")
    used = (measured or {}).get("threads", threads)
    bw = combine("bandwidth", table=None, measured=bw_value,
                 measured_what=f"STREAM-like copy, {used} threads (as the timing)")
    note = "no table of CPUs: the measured bandwidth only"
    if bw_value is None:
        note = "CPU bandwidth not measured: no limit"
    return DeviceLimits(device="cpu", name=f"CPU {model}, {threads} threads", key=cpu_key(model, threads),
                        note=note, bandwidth=bw, compute=Limit(kind="compute", what="no compute limit on CPU"),
                        measured_at=(measured or {}).get("measured_at"))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:120]


def cuda_key(props: DeviceProps) -> str:
    return _slug(f"cuda-{props.uuid or props.name}-driver-{props.driver or 'unknown'}")


def cpu_key(model: str, threads: int) -> str:
    return _slug(f"cpu-{model}-{threads}t")


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.lower().startswith(("model name", "cpu model", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def timing_threads() -> int:
    """The intra-op threads a timed CPU child gets: OMP_NUM_THREADS where set (a CPU lane sets it),
    else the cores this process may run on (the child inherits the affinity)."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
        if n > 0:
            return n
    except ValueError:
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cache_path(key: str) -> Path:
    folder = data_dir() / "limits"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.json"


def _read_cache(key: str) -> dict | None:
    try:
        data = json.loads(_cache_path(key).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_cache(key: str, data: dict) -> None:
    """Write atomically; a home that cannot be written costs a measurement next time, nothing more."""
    try:
        path = _cache_path(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError as err:
        log.warning("limits cache %s not written: %s", key, err)


def run_probe(*args: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict | None:
    """Run probe.py in a subprocess (same environment and affinity); its JSON, or None on failure."""
    try:
        proc = subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("limits probe %s failed: %s", " ".join(args), err)
        return None
    if proc.returncode != 0:
        log.warning("limits probe %s exited %d: %s", " ".join(args), proc.returncode, proc.stderr[-500:])
        return None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log.warning("limits probe %s printed no JSON", " ".join(args))
        return None


def _age_s(entry: dict) -> float:
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(entry["checked_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return float("inf")


def _measured(key: str, *probe_args: str, max_age_s: float | None = None, figure: str = "copy_bytes_per_s") -> dict | None:
    """The cached measurement; measured when there is none, or again when older than `max_age_s`,
    keeping whichever entry has the larger `figure` (a limit is the best the device was seen to do)."""
    cached = _read_cache(key)
    if cached is not None and (max_age_s is None or _age_s(cached) < max_age_s):
        return cached
    fresh = run_probe(*probe_args)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if fresh is None:
        return cached
    fresh["measured_at"] = now
    best = fresh if cached is None or fresh.get(figure, 0) >= cached.get(figure, 0) else cached
    best = {**best, "checked_at": now}
    _write_cache(key, best)
    return best


def measure_cpu_limits() -> DeviceLimits:
    """This machine's CPU limits for the timing's thread count (cached; measured on first use)."""
    threads, model = timing_threads(), cpu_model()
    return cpu_limits(model, threads, _measured(cpu_key(model, threads), "cpu", "--threads", str(threads),
                                                max_age_s=CPU_RECHECK_S))


@functools.lru_cache(maxsize=16)
def _identify(visible: str | None) -> DeviceProps | None:
    """The GPU `CUDA_VISIBLE_DEVICES=visible` shows, asked once per process and pin."""
    ident = run_probe("cuda-identify", timeout_s=120)
    return props_from(ident) if ident and ident.get("name") else None


def unidentified_cuda_limits() -> DeviceLimits:
    """A GPU the probe could not identify (pure): the table's highest figures, so the floor still
    catches what no sm_90 part could do, and never flags what one could."""
    fastest = max(PARTS, key=lambda p: p.bandwidth)
    strongest = max(PARTS, key=lambda p: p.bf16_dense)
    return DeviceLimits(
        device="cuda", name="GPU (not identified)", key="cuda-unidentified",
        note="the limits probe could not identify the GPU: the highest figures of the sm_90 table",
        bandwidth=Limit(kind="bandwidth", value=fastest.bandwidth, table=fastest.bandwidth, basis="table",
                        what=f"highest peak bandwidth in the table, {fastest.name} ({fastest.source})"),
        compute=Limit(kind="compute", value=strongest.bf16_dense, table=strongest.bf16_dense, basis="table",
                      what=f"highest dense BF16 peak in the table, {strongest.name} ({strongest.source})"))


def measure_cuda_limits() -> DeviceLimits | None:
    """The visible GPU's limits (cached per device and driver); None when no GPU answers."""
    props = _identify(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if props is None:
        return None
    return cuda_limits(props, _measured(cuda_key(props), "cuda"))


def props_from(data: dict) -> DeviceProps:
    return DeviceProps(name=str(data["name"]), sms=int(data["sms"]), total_memory=int(data["total_memory"]),
                       major=int(data.get("major", 9)), minor=int(data.get("minor", 0)),
                       uuid=str(data.get("uuid") or ""), driver=str(data.get("driver") or ""),
                       clock_mhz=data.get("clock_mhz"))


def device_limits(device: str) -> DeviceLimits:
    """Limits for `device` ('cpu' or 'cuda') where the caller runs its timing. A GPU the probe
    cannot identify gets the table's highest figures (unidentified_cuda_limits)."""
    if device == "cpu":
        return measure_cpu_limits()
    return measure_cuda_limits() or unidentified_cuda_limits()


__all__ = ["DeviceLimits", "Limit", "combine", "cpu_limits", "cpu_key", "cpu_model", "cuda_key", "cuda_limits",
           "device_limits", "measure_cpu_limits", "measure_cuda_limits", "props_from", "run_probe",
           "timing_threads", "unidentified_cuda_limits"]
