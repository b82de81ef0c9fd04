"""Rich tables for the terminal: per model and arm, the lift lines, skips and errors.

Every figure measured on a CPU carries the word CPU; skipped checks read "skip (reason)",
never a number.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.compare import CompareResult
from harness.report.fit import print_table
from harness.report.model import GenerateRunView, ReportRun
from harness.report.roofline import render_roofline
from harness.report.summary import (
    RATE_COLUMNS, UPSKILL_RULE_LABEL, ArmSummary, Rate, SpeedupSummary, Summary, summarize,
)

RATE_TITLES = {"build_toml": "build.toml", "compile": "compile", "run": "run", "correct": "correct"}
VERDICT_STYLE = {"helps": "green", "hurts": "red", "no measurable effect": "yellow",
                 "not enough runs": "dim", "B better": "green", "B worse": "red"}


def device_label(device: str | None) -> str:
    """'CPU' for cpu figures, 'GPU' for cuda, the raw name otherwise."""
    return {"cpu": "CPU", "cuda": "GPU"}.get(device or "", device or "?")


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def fmt_rate(r: Rate, *, interval: bool = True) -> str:
    if r.rate is None:
        if r.skipped in ("not required", "no completed trials"):
            return r.skipped
        return f"skip ({r.skipped})" if r.skipped else "-"
    text = f"{fmt_pct(r.rate)} ({r.k}/{r.n})"
    if interval and r.lo is not None and r.hi is not None:
        text += f" [{fmt_pct(r.lo)}, {fmt_pct(r.hi)}]"
    return text


def fmt_speedup(s: SpeedupSummary) -> str:
    return f"{s.geomean:.2f}x {device_label(s.device)} [{s.lo:.2f}, {s.hi:.2f}] n={s.count}"


def fmt_pass_at_k(a: ArmSummary) -> str:
    return ", ".join(f"@{k} {fmt_pct(v)}" for k, v in a.pass_at_k.items()) or "-"


def fmt_tokens(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def fmt_cost(x: float | None) -> str:
    return "no price" if x is None else f"${x:.4f}"


def _table(title: str, columns: tuple[str, ...], caption: str | None = None) -> Table:
    # fold, never ellipsis: a narrow terminal must not hide digits
    table = Table(title=title, caption=caption)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def arm_table(summary: Summary) -> Table:
    """Pass rates, errors, assertions, tokens and cost per model and arm."""
    multi_run = any(len(a.pass_at_k) > 1 for a in summary.arms)
    cols = ("model", "arm", "n", "pass rate [95% CI]", "errors", "incomplete", "assertions",
            *(("pass@k",) if multi_run else ()), "tokens in/out (cached in)", "cost")
    table = _table("Results per model and arm", cols)
    for a in summary.arms:
        assertions = ("-" if a.avg_assertions_passed is None
                      else f"{a.avg_assertions_passed:.1f}/{a.avg_assertions_total:.1f}")
        cells = (
            a.model, a.arm, str(a.n), fmt_rate(a.pass_rate), str(a.errors), str(a.incomplete), assertions,
            *((fmt_pass_at_k(a),) if multi_run else ()),
            f"{fmt_tokens(a.avg_input_tokens)}/{fmt_tokens(a.avg_output_tokens)}"
            + (f" ({fmt_tokens(a.avg_cached_tokens)})" if a.avg_cached_tokens else ""), fmt_cost(a.cost_usd),
        )
        table.add_row(*(escape(c) for c in cells))
    return table


def has_kernel_figures(summary: Summary) -> bool:
    return any(r.rate is not None or r.skipped != "not required"
               for a in summary.arms for r in a.rates.values())


FAST_KEYS = ("fast_0", "fast_1", "fast_2")


def fmt_fast(a: ArmSummary, key: str) -> str:
    """KernelBench's fast_p per device ("-" where no trial reached the run check)."""
    if not a.fast:
        return "-"
    return ", ".join(f"{fmt_pct(v.get(key))} {device_label(d)}" for d, v in a.fast.items())


def kernel_table(summary: Summary) -> Table:
    """Build/compile/run/correct rates, KernelBench's fast_0/1/2 and speedups (correct trials
    only, per device)."""
    cols = ("model", "arm", *(RATE_TITLES[c] for c in RATE_COLUMNS), *FAST_KEYS, "geomean speedup (correct only)")
    table = _table("Kernel checks per model and arm", cols,
                   caption="fast_p (KernelBench): share of trials correct and more than p times as fast as "
                           "the reference; fast_0 = correct rate.")
    for a in summary.arms:
        speed = "; ".join(fmt_speedup(s) for s in a.speedup) or "-"
        cells = (a.model, a.arm, *(fmt_rate(a.rates[c], interval=False) for c in RATE_COLUMNS),
                 *(fmt_fast(a, k) for k in FAST_KEYS), speed)
        table.add_row(*(escape(c) for c in cells))
    return table


def lift_table(summary: Summary) -> Table:
    table = _table("Skill lift per model (paired by case and run index)",
                   ("model", "baseline", "with skill", "lift, points [95% CI]", "pairs", "b / c", "McNemar p",
                    "verdict", "token savings", UPSKILL_RULE_LABEL),
                   caption="CI: bootstrap over cases. b: pairs only the baseline passed, c: only with "
                           "the skill; p: exact McNemar. Verdict at p < 0.05, needs >= 6 discordant pairs.")
    for line in summary.lifts:
        if line.lift is None:
            lift = "-"
        else:
            lift = f"{100 * line.lift:+.0f} [{100 * line.lift_lo:+.0f}, {100 * line.lift_hi:+.0f}]"
        style = VERDICT_STYLE.get(line.verdict, "")
        savings = "-" if line.token_savings is None else f"{100 * line.token_savings:+.0f}%"
        table.add_row(
            escape(line.model), fmt_pct(line.pass_baseline), fmt_pct(line.pass_with), lift, str(line.pairs),
            f"{line.b} / {line.c}", f"{line.p_value:.4f}", f"[{style}]{line.verdict}[/]" if style else line.verdict,
            savings, "beneficial" if line.upskill_beneficial else "not beneficial",
        )
    return table


def pareto_table(summary: Summary) -> Table:
    basis = summary.pareto[0].basis if summary.pareto else "cost"
    table = _table(f"Model choice: pass rate vs {basis} (Pareto front marked *)",
                   ("", "model", "arm", "pass rate", "cost / trial", "tokens / trial"))
    for row in summary.pareto:
        table.add_row("*" if row.on_front else "", escape(row.model), row.arm, fmt_pct(row.pass_rate),
                      fmt_cost(row.cost_per_trial), fmt_tokens(row.avg_tokens))
    return table


def render_summary(run: ReportRun, summary: Summary, console: Console) -> None:
    head = f"[bold]run {escape(run.run_id)}[/]"
    if run.skill_name:
        head += f"  skill {escape(run.skill_name)}"
        if run.skill_sha256:
            head += f" ({run.skill_sha256[:12]})"
        if run.skill_tokens is not None:
            head += f", {run.skill_tokens:,} tokens"
    console.print(head)
    level = run.level or "?"
    # The device matters only where code ran; at text/compile level it would mislead.
    where = f", device {device_label(run.device)}" if level == "run" else ""
    console.print(escape(f"level {level}{where}" + "".join(f"; {n}" for n in run.notes)))
    print_table(console, arm_table(summary))
    if summary.agent:
        from harness.report.agent_view import render_agent_summary

        render_agent_summary(summary.agent, console)
    if has_kernel_figures(summary):
        print_table(console, kernel_table(summary))
    render_roofline(summary.roofline, console)
    if summary.lifts:
        print_table(console, lift_table(summary))
    if summary.pareto:
        print_table(console, pareto_table(summary))
    if summary.skipped:
        console.print("[bold]Skipped checks[/] (never counted as passes)")
        for s in summary.skipped:
            console.print(escape(f"  skip {s.check}: {s.reason} ({s.count} {'trial' if s.count == 1 else 'trials'})"))
    if summary.errors:
        console.print(f"[bold red]Errors ({len(summary.errors)})[/] (not counted as failures)")
        for e in summary.errors:
            console.print(escape(f"  error {e.trial} [{e.where}]: {e.reason}"))


def render_terminal(run: ReportRun, console: Console, *, summary: Summary | None = None,
                    trajectories: bool = False) -> Summary:
    """Print the report for `run`; returns the summary it computed (for gates). `trajectories`:
    agent trials turn by turn after the tables (collapsed by default: `runs show --trajectories`)."""
    summary = summary or summarize(run)
    render_summary(run, summary, console)
    if trajectories and run.mode == "agent":
        from harness.report.agent_view import render_trajectories

        render_trajectories(run, console)
    elif run.mode == "agent":
        console.print(f"trajectories: kernelgrade runs show {run.run_id} --trajectories", highlight=False)
    return summary


def render_generate(view: GenerateRunView, console: Console) -> None:
    """A generate run: what it was asked, its teacher calls, and the eval runs holding its trials."""
    console.print(escape(f"generate run {view.run_id}: {view.task!r}; teacher {view.teacher}, students "
                         f"{', '.join(view.students)}; run status: {view.status}"), highlight=False)
    console.print(escape(f"source: {view.source}; cases: {len(view.train_cases)} train, "
                         f"{len(view.holdout_cases)} held out"), highlight=False)
    calls = _table(f"Teacher calls ({len(view.teacher_calls)})", ("step", "attempt", "status", "output tokens",
                                                                  "problem"))
    for c in view.teacher_calls:
        calls.add_row(c.step, str(c.attempt), c.status, "-" if c.output_tokens is None else str(c.output_tokens),
                      escape(c.problem or ""))
    print_table(console, calls)
    runs = _table("Eval runs made by this generate run (their trials: kernelgrade runs show RUN_ID)",
                  ("phase", "run", "status", "trials", "errors", "pass baseline", "pass with skill"))
    for r in view.eval_runs:
        rates = [f"{r.passed.get(arm, 0)}/{r.graded[arm]}" if r.graded.get(arm) else "-"
                 for arm in ("baseline", "with_skill")]
        runs.add_row(r.phase, r.run_id, r.status, str(r.trials), str(r.errors), *rates)
    print_table(console, runs)
    holdout = next((r for r in view.eval_runs if r.phase == "holdout"), None)
    if holdout is not None:
        console.print(f"the verdict (held-out cases only): kernelgrade runs show {holdout.run_id}", highlight=False)
    else:
        resume = f" (resume with: kernelgrade generate --resume {view.run_id})" if view.status == "interrupted" else ""
        console.print(f"no held-out eval run yet, so no verdict{resume}", highlight=False)
    if view.skill_path:
        cases = f" and {view.cases_path}" if view.cases_path else ""  # generate --no-eval writes no cases
        console.print(escape(f"wrote {view.skill_path}{cases}"), highlight=False)


def render_compare(result: CompareResult, console: Console) -> None:
    table = _table(f"Run {escape(result.run_b)} (B) vs run {escape(result.run_a)} (A), same cases, paired",
                   ("model", "arm", "pairs", "pass A", "pass B", "B - A [95% CI]", "b / c", "McNemar p", "verdict"),
                   caption="b: pairs only A passed, c: only B passed; p: exact McNemar; CI: bootstrap over cases.")
    for r in result.rows:
        diff = "-" if r.diff is None else f"{100 * r.diff:+.0f} pts"
        if r.diff is not None and r.diff_lo is not None and r.diff_hi is not None:
            diff += f" [{100 * r.diff_lo:+.0f}, {100 * r.diff_hi:+.0f}]"
        style = VERDICT_STYLE.get(r.verdict, "")
        table.add_row(escape(r.model), r.arm, str(r.pairs), fmt_pct(r.pass_a), fmt_pct(r.pass_b), diff,
                      f"{r.b} / {r.c}", f"{r.p_value:.4f}", f"[{style}]{r.verdict}[/]" if style else r.verdict)
    print_table(console, table)
    if result.basis == "run":
        console.print("compared per run: one side was imported from upskill, whose logs hold whole runs, so a run "
                      "passes when every case of it passed (upskill's rule) and the two sides are not paired",
                      highlight=False)
    if result.only_in_a or result.only_in_b:
        console.print(f"not compared: {len(result.only_in_a)} (model, arm, case) only in A, "
                      f"{len(result.only_in_b)} only in B")
