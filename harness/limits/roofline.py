"""The physics floor and the roofline figures of one timed kernel (pure: limits in, numbers out).

The floor: a call cannot move `bytes_moved` bytes faster than the device's bandwidth limit
allows; a median below that is a wrong measurement or a cheat. On CPU the limit is a measured
STREAM-like copy on shared cores, so the floor sits at half of it (CPU_FLOOR_MARGIN): an honest
kernel never comes near, a call that skips the work lands far below. On CUDA the limit is the
larger of the datasheet peak and the measured copy, used as is.

The roofline: achieved bytes/s and FLOP/s, each against its limit; the attainable time
max(bytes / bandwidth, flops / compute) over the measured time is the fraction of the roofline.
Every figure carries the device and the limit it was measured against, as flat metrics of the
speedup check (ROOFLINE_KEYS).
"""

from __future__ import annotations

from harness.limits.device import DeviceLimits

CPU_FLOOR_MARGIN = 2.0
"""The CPU floor is bytes at CPU_FLOOR_MARGIN x the measured copy bandwidth."""
CUDA_FLOOR_MARGIN = 1.0

#: The speedup check's metrics that carry the roofline (read back by harness.report.roofline).
ROOFLINE_KEYS = ("limits_device", "limits_part", "limits_note", "bytes_moved", "flops", "bandwidth_gbs",
                 "bandwidth_limit_gbs", "bandwidth_limit_basis", "bandwidth_limit_what", "bandwidth_fraction",
                 "gflops", "compute_limit_gflops", "compute_limit_basis", "compute_limit_what", "compute_fraction",
                 "roofline_fraction", "bound", "floor_us")


def _count(value) -> int | None:
    """bytes_moved / flops as the reference returned them: a positive int, or None (not counted)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def floor_ns(bytes_moved: int | None, limits: DeviceLimits | None) -> float | None:
    """The least time `bytes_moved` bytes need on the device; None when either is unknown."""
    moved = _count(bytes_moved)
    if moved is None or limits is None or not limits.bandwidth.value:
        return None
    margin = CPU_FLOOR_MARGIN if limits.device == "cpu" else CUDA_FLOOR_MARGIN
    return moved / (limits.bandwidth.value * margin) * 1e9


def floor_problem(median_ns: float, bytes_moved: int | None, limits: DeviceLimits | None) -> str | None:
    """A reason when the median beats the floor, else None."""
    floor = floor_ns(bytes_moved, limits)
    if floor is None or median_ns >= floor:
        return None
    assert limits is not None and limits.bandwidth.value is not None
    margin = CPU_FLOOR_MARGIN if limits.device == "cpu" else CUDA_FLOOR_MARGIN
    rate = limits.bandwidth.value * margin / 1e9
    at = f"{rate:,.0f} GB/s" + (f" ({margin:g}x the {limits.bandwidth.basis} {limits.bandwidth.value / 1e9:,.0f} GB/s)"
                                if margin != 1.0 else f" ({limits.bandwidth.basis})")
    return (f"median {median_ns / 1e3:.2f} us is below the {floor / 1e3:.2f} us that {int(bytes_moved)} bytes need "
            f"at {at} on {limits.name}: {limits.bandwidth.what}")


def roofline_metrics(*, bytes_moved, flops, seconds: float, limits: DeviceLimits | None) -> dict:
    """The ROOFLINE_KEYS for one timed kernel (`seconds`: the candidate's median)."""
    moved, flop = _count(bytes_moved), _count(flops)
    bw = limits.bandwidth.value if limits else None
    fl = limits.compute.value if limits else None
    got_bw = moved / seconds if moved is not None and seconds > 0 else None
    got_fl = flop / seconds if flop is not None and seconds > 0 else None
    parts = [(moved / bw, "memory") if moved is not None and bw else None,
             (flop / fl, "compute") if flop is not None and fl else None]
    attainable = max((p for p in parts if p is not None), default=None)
    floor = floor_ns(moved, limits)
    return {
        "limits_device": limits.name if limits else None,
        "limits_part": limits.part if limits else None,
        "limits_note": (limits.note if limits else "no limits known for this device") or None,
        "bytes_moved": moved, "flops": flop,
        "bandwidth_gbs": got_bw / 1e9 if got_bw is not None else None,
        "bandwidth_limit_gbs": bw / 1e9 if bw else None,
        "bandwidth_limit_basis": limits.bandwidth.basis if limits else None,
        "bandwidth_limit_what": limits.bandwidth.what if limits else None,
        "bandwidth_fraction": got_bw / bw if got_bw is not None and bw else None,
        "gflops": got_fl / 1e9 if got_fl is not None else None,
        "compute_limit_gflops": fl / 1e9 if fl else None,
        "compute_limit_basis": limits.compute.basis if limits else None,
        "compute_limit_what": limits.compute.what if limits else None,
        "compute_fraction": got_fl / fl if got_fl is not None and fl else None,
        "roofline_fraction": attainable[0] / seconds if attainable is not None and seconds > 0 else None,
        "bound": attainable[1] if attainable is not None else None,
        "floor_us": floor / 1e3 if floor is not None else None,
    }


def fmt_fraction(fraction: float) -> str:
    """A fraction as a percentage that stays readable when small: '70%', '0.33%'."""
    pct = 100 * fraction
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.2g}%"


def roofline_summary(metrics: dict) -> str | None:
    """One clause for the check's reason: '70% of the bandwidth limit (4,800 GB/s, table) of NVIDIA H200'."""
    fraction, limit = metrics.get("bandwidth_fraction"), metrics.get("bandwidth_limit_gbs")
    if fraction is None or not limit:
        return None
    return (f"{fmt_fraction(fraction)} of the bandwidth limit ({limit:,.0f} GB/s, {metrics.get('bandwidth_limit_basis')})"
            f" of {metrics.get('limits_device')}")


__all__ = ["CPU_FLOOR_MARGIN", "CUDA_FLOOR_MARGIN", "ROOFLINE_KEYS", "floor_ns", "floor_problem", "fmt_fraction",
           "roofline_metrics", "roofline_summary"]
