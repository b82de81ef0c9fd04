"""One self-contained HTML file (`--html FILE`): summary, model x arm x case grid, per-trial detail.

Everything is inline (CSS, SVG charts, a few lines of JS that open the trial named in the
URL fragment or clicked in the grid), so the file can be mailed or archived as is.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from harness.report import roofline, svg, terminal
from harness.report.agent_summary import shown_turns
from harness.report.model import ReportRun, ReportTrial
from harness.report.summary import RATE_COLUMNS, Summary, speedup_of, summarize

CORRECTNESS_CHECK = "run"
TIMING_CHECK = "speedup"


def _env() -> Environment:
    env = Environment(loader=PackageLoader("harness.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=terminal.fmt_pct, rate=terminal.fmt_rate, tokens=terminal.fmt_tokens,
                       cost=terminal.fmt_cost, speedup=terminal.fmt_speedup, device=terminal.device_label,
                       pass_at_k=terminal.fmt_pass_at_k, fast=terminal.fmt_fast,
                       roofline_rate=roofline.fmt_rate, limits=roofline.limits_line, count=roofline.fmt_count,
                       fraction=roofline.fmt_fraction)
    return env


def _grid(run: ReportRun, index: dict[str, int]) -> list[dict]:
    """Rows (model, arm), one cell per case holding that case's trials in run-index order."""
    rows = []
    for model in run.models:
        for arm in run.arms:
            trials = [t for t in run.trials if t.model == model and t.arm == arm]
            if not trials:
                continue
            cells = []
            for case in run.cases:
                here = sorted((t for t in trials if t.case_id == case), key=lambda t: t.run_index)
                cells.append([{"id": f"t-{index[t.key]}", "verdict": t.verdict, "run_index": t.run_index,
                               "title": f"{case} #{t.run_index}: {t.verdict} {t.verdict_reason}"}
                              for t in here])
            rows.append({"model": model, "arm": arm, "cells": cells})
    return rows


def _trial_view(trial: ReportTrial, i: int, run: ReportRun, seen_prompts: dict[str, str]) -> dict:
    build = trial.check("build_toml")
    charts = [Markup(svg.histogram_chart(counts, title=f"SASS opcodes: {kernel}"))
              for kernel, counts in sorted(trial.sass_histogram.items())]
    device = trial.device or run.device
    return {
        "id": f"t-{i}", "t": trial, "device_label": terminal.device_label(device),
        "build_findings": build.findings if build else [],
        "compile_log": trial.logs.get("compile"),
        "other_logs": {k: v for k, v in trial.logs.items() if k != "compile"},
        "correctness": trial.check(CORRECTNESS_CHECK), "timing": trial.check(TIMING_CHECK),
        "speedup": speedup_of(trial), "sass_charts": [c for c in charts if c],
        # the prompt (with the skill block) repeats across runs: embed it once, link the rest
        "prompt_same_as": seen_prompts.setdefault(trial.prompt, f"t-{i}") if trial.prompt else None,
    }


def render_html(run: ReportRun, *, summary: Summary | None = None) -> str:
    summary = summary or summarize(run)
    index = {t.key: i for i, t in enumerate(run.trials)}
    seen: dict[str, str] = {}
    template = _env().get_template("report.html.j2")
    return template.render(
        run=run, summary=summary, rate_columns=RATE_COLUMNS, rate_titles=terminal.RATE_TITLES,
        pass_chart=Markup(svg.pass_rate_chart(summary)), grid=_grid(run, index), cases=run.cases,
        trials=[_trial_view(t, index[t.key], run, seen) for t in run.trials],
        agent_turns=shown_turns(max((len(a.pass_at_turn) for a in summary.agent), default=0)),
    )


def write_html(run: ReportRun, path: Path, *, summary: Summary | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(run, summary=summary), encoding="utf-8")
    return path
