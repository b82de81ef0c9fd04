"""PNG charts (`kernelgrade plot RUN`): pass rate per model and arm with intervals; speedup distribution.

matplotlib with the Agg backend (no display needed). Speedups are drawn per device in
separate panels, so CPU and GPU figures are never pooled; CPU panels say CPU.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from harness.report.model import ARMS, ReportRun
from harness.report.summary import Summary, device_of, is_correct, speedup_of, summarize
from harness.report.svg import ARM_COLOURS
from harness.report.terminal import device_label

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # why: headless machines and CI have no display
    import matplotlib.pyplot as plt

    return plt


def pass_rate_figure(summary: Summary):
    """Bars of pass rate (%) per model, one per arm, with Wilson intervals as error bars."""
    plt = _pyplot()
    models = list(dict.fromkeys(a.model for a in summary.arms))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(models) + 2), 3.6))
    width = 0.38
    for j, arm in enumerate(ARMS):
        xs, ys, errs = [], [], [[], []]
        for i, model in enumerate(models):
            a = summary.arm(model, arm)
            if a is None or a.pass_rate.rate is None:
                continue
            r = a.pass_rate
            xs.append(i + (j - 0.5) * width)
            ys.append(100 * r.rate)
            errs[0].append(100 * (r.rate - r.lo))
            errs[1].append(100 * (r.hi - r.rate))
        if xs:
            ax.bar(xs, ys, width, yerr=errs, capsize=4, label=arm.replace("_", " "),
                   color=ARM_COLOURS.get(arm))
    ax.set_xticks(range(len(models)), models, rotation=15, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("pass rate (%)")
    ax.set_title("Pass rate, baseline vs with skill (95% Wilson interval)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_pass_rates(summary: Summary, path: Path) -> Path:
    return _save(pass_rate_figure(summary), path)


def speedup_figure(run: ReportRun):
    """Speedup of correct trials, one panel per device, one column per (model, arm); None if none."""
    data: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in run.trials:
        s = speedup_of(t)
        if t.verdict in ("pass", "fail") and is_correct(t) and s is not None:
            data[device_of(t, run)][f"{t.model}\n{t.arm}"].append(s)
    if not data:
        log.info("no correct trial with a measured speedup: no speedup chart")
        return None
    plt = _pyplot()
    from matplotlib import ticker

    devices = sorted(data)
    fig, axes = plt.subplots(1, len(devices), figsize=(5.0 * len(devices), 3.8), squeeze=False)
    for ax, device in zip(axes[0], devices):
        groups = data[device]
        labels = list(groups)
        ax.boxplot([groups[k] for k in labels], showfliers=False)
        for i, k in enumerate(labels, start=1):
            ax.scatter([i] * len(groups[k]), groups[k], s=12, alpha=0.6, color="#2b7bb9", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.axhline(1.0, color="#999", linestyle="--", linewidth=1)
        ax.set_ylabel("speedup vs reference (log)")
        ax.set_title(f"Speedup of correct trials ({device_label(device)})")
    fig.tight_layout()
    return fig


def plot_speedups(run: ReportRun, path: Path) -> Path | None:
    fig = speedup_figure(run)
    return _save(fig, path) if fig is not None else None


def write_plots(run: ReportRun, outdir: Path, *, summary: Summary | None = None) -> list[Path]:
    """Write the PNG charts into outdir; returns the files written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summary = summary or summarize(run)
    written = [plot_pass_rates(summary, outdir / f"{run.run_id}-pass-rate.png")]
    speed = plot_speedups(run, outdir / f"{run.run_id}-speedup.png")
    if speed is not None:
        written.append(speed)
    return written
