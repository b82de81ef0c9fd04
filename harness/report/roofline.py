"""Roofline per timed kernel (issue 22): bytes moved and FLOPs from the reference contract, the
achieved rates, each against the limit of the device the kernel was timed on, and the fractions.

Read from the speedup check's metrics (harness.limits.roofline.ROOFLINE_KEYS); grouped by the
device the figures were measured on and never pooled across devices. A run graded before the
limits existed has no `limits_device`: its kernels are listed under "<CPU|GPU> (limits not
recorded)" without a limit or fraction (its old bandwidth_fraction was against a fixed H100
figure, whatever the device).
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.limits.roofline import fmt_fraction
from harness.report.fit import print_table
from harness.report.model import ReportRun, ReportTrial

TIMING_CHECK = "speedup"
_LABEL = {"cpu": "CPU", "cuda": "GPU"}


class RooflineRow(BaseModel):
    """One timed kernel (a trial's speedup check) against its device's limits."""

    model: str
    arm: str
    case_id: str
    run_index: int
    status: str
    """The speedup check's status (pass / fail)."""
    median_us: float | None = None
    bytes_moved: int | None = None
    """From the reference's bytes_moved(shape, dtype); None when it does not count them."""
    flops: int | None = None
    """From the reference's flops(shape, dtype); None when it does not count them."""
    bandwidth_gbs: float | None = None
    bandwidth_fraction: float | None = None
    """Achieved bytes/s over the device's bandwidth limit."""
    gflops: float | None = None
    compute_fraction: float | None = None
    """Achieved FLOP/s over the device's compute limit (dense BF16 on CUDA; none on CPU)."""
    roofline_fraction: float | None = None
    """max(bytes / bandwidth, flops / compute) over the median: the fraction of the roofline."""
    bound: str | None = None
    """'memory' or 'compute': which roof is lower for this kernel."""


class RooflineDevice(BaseModel):
    """The timed kernels of one device and the limits they are measured against."""

    device: str
    """The device as measured, e.g. 'NVIDIA H200' or 'CPU AMD EPYC, 2 threads'."""
    kind: str
    """cpu or cuda."""
    part: str | None = None
    """The table's row for the part; None for a CPU or a part not in the table."""
    note: str | None = None
    bandwidth_limit_gbs: float | None = None
    bandwidth_limit_basis: str | None = None
    """table or measured (the larger of the two)."""
    bandwidth_limit_what: str | None = None
    compute_limit_gflops: float | None = None
    compute_limit_basis: str | None = None
    compute_limit_what: str | None = None
    rows: list[RooflineRow] = Field(default_factory=list)


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _row(trial: ReportTrial, m: dict, status: str, recorded: bool) -> RooflineRow:
    return RooflineRow(
        model=trial.model, arm=trial.arm, case_id=trial.case_id, run_index=trial.run_index, status=status,
        median_us=_num(m.get("candidate_median_us")), bytes_moved=_int(m.get("bytes_moved")),
        flops=_int(m.get("flops")), bandwidth_gbs=_num(m.get("bandwidth_gbs")), gflops=_num(m.get("gflops")),
        bandwidth_fraction=_num(m.get("bandwidth_fraction")) if recorded else None,
        compute_fraction=_num(m.get("compute_fraction")) if recorded else None,
        roofline_fraction=_num(m.get("roofline_fraction")) if recorded else None,
        bound=m.get("bound") if recorded else None)


def roofline_by_device(run: ReportRun) -> list[RooflineDevice]:
    """Every timed kernel of the run, grouped by the device it was timed on (sorted by name)."""
    groups: dict[str, RooflineDevice] = {}
    rows: dict[str, list[RooflineRow]] = defaultdict(list)
    for trial in run.trials:
        check = trial.check(TIMING_CHECK)
        if check is None or check.status in ("skip", "error") or "candidate_median_us" not in check.metrics:
            continue
        m = check.metrics
        kind = check.device or trial.device or run.device or "unknown"
        recorded = isinstance(m.get("limits_device"), str)
        name = m["limits_device"] if recorded else f"{_LABEL.get(kind, kind)} (limits not recorded)"
        if name not in groups:
            groups[name] = RooflineDevice(
                device=name, kind=kind, part=m.get("limits_part") if recorded else None,
                note=m.get("limits_note") if recorded else "graded before limits per device were recorded",
                **{k: (m.get(k) if recorded else None) for k in (
                    "bandwidth_limit_gbs", "bandwidth_limit_basis", "bandwidth_limit_what",
                    "compute_limit_gflops", "compute_limit_basis", "compute_limit_what")})
        rows[name].append(_row(trial, m, check.status, recorded))
    return [groups[n].model_copy(update={"rows": rows[n]}) for n in sorted(groups)]


def fmt_rate(value: float | None, fraction: float | None, unit: str) -> str:
    """'3,355 GB/s (70% of limit)', or '-' when not counted."""
    if value is None:
        return "-"
    text = f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return text + (f" ({fmt_fraction(fraction)})" if fraction is not None else "")


def fmt_count(value: int | None) -> str:
    return "not counted" if value is None else f"{value:,}"


def limits_line(d: RooflineDevice) -> str:
    """The limits a device's figures are measured against, in words."""
    bw = (f"bandwidth {d.bandwidth_limit_gbs:,.0f} GB/s ({d.bandwidth_limit_basis}: {d.bandwidth_limit_what})"
          if d.bandwidth_limit_gbs else "no bandwidth limit")
    fl = (f"compute {d.compute_limit_gflops / 1e3:,.1f} TFLOP/s ({d.compute_limit_basis}: {d.compute_limit_what})"
          if d.compute_limit_gflops else "no compute limit")
    return f"{bw}; {fl}" + (f"; {d.note}" if d.note else "")


def roofline_table(d: RooflineDevice) -> Table:
    table = Table(title=escape(f"Roofline per kernel on {d.device}"), caption=escape(f"limits: {limits_line(d)}"))
    for col in ("case", "model", "arm", "run", "median", "bytes", "FLOPs", "GB/s (% of limit)",
                "GFLOP/s (% of limit)", "bound (% of roofline)"):
        table.add_column(col, overflow="fold")
    for r in d.rows:
        bound = "-" if r.bound is None else r.bound + (
            f" ({fmt_fraction(r.roofline_fraction)})" if r.roofline_fraction is not None else "")
        table.add_row(*(escape(c) for c in (
            r.case_id, r.model, r.arm, str(r.run_index), "-" if r.median_us is None else f"{r.median_us:,.1f} us",
            fmt_count(r.bytes_moved), fmt_count(r.flops), fmt_rate(r.bandwidth_gbs, r.bandwidth_fraction, "GB/s"),
            fmt_rate(r.gflops, r.compute_fraction, "GFLOP/s"), bound)))
    return table


def render_roofline(devices: list[RooflineDevice], console: Console) -> None:
    """One table per device: figures of different devices are never in one table."""
    for d in devices:
        print_table(console, roofline_table(d))


__all__ = ["RooflineDevice", "RooflineRow", "fmt_rate", "limits_line", "render_roofline", "roofline_by_device",
           "roofline_table"]
