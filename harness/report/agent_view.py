"""Agent runs in the terminal: the per-arm agent table, pass@turn, and (on request) each
trajectory turn by turn (`runs show ID --trajectories`, or -v)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.agent_summary import AgentArmSummary, shown_turns
from harness.report.fit import print_table
from harness.report.model import ReportRun, ReportTrial

RESULT_LINES = 8
"""Lines of a tool result shown per call in the terminal (run_checks results are the longest)."""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _table(title: str, columns: tuple[str, ...], caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def agent_table(rows: list[AgentArmSummary]) -> Table:
    table = _table("Agent trials per model and arm",
                   ("model", "arm", "trials", "turns (mean / max)", "ended", "tool calls (per trial)", "tool errors",
                    "tokens / trial", "cost / trial", "read SKILL.md", "references read"),
                   caption="ended: how trajectories ended (ran out = turn, token or context limit, graded as it "
                           "stood). Reads count successful read_file calls of skill/ files.")
    for a in rows:
        turns = "-" if a.avg_turns is None else f"{a.avg_turns:.1f} / {a.max_turns_used}"
        ended = ", ".join(f"{k} {v}" for k, v in a.outcomes.items()) or "-"
        calls = ", ".join(f"{k} {v}" for k, v in a.tool_calls.items()) or "-"
        if a.tool_calls_per_trial is not None:
            calls += f" ({a.tool_calls_per_trial:.1f})"
        read = "n/a" if a.skill_md_read is None else f"{a.skill_md_read}/{a.trials} ({_pct(a.skill_md_share)})"
        refs = "n/a" if a.skill_md_read is None else (", ".join(f"{k} {v}" for k, v in a.references_read.items())
                                                      or "none")
        tokens = "-" if a.tokens_per_trial is None else f"{a.tokens_per_trial:,.0f}"
        cost = "no price" if a.cost_per_trial is None else f"${a.cost_per_trial:.4f}"
        table.add_row(*(escape(c) for c in (a.model, a.arm, str(a.trials), turns, ended, calls, str(a.tool_errors),
                                            tokens, cost, read, refs)))
    return table


def pass_at_turn_table(rows: list[AgentArmSummary]) -> Table:
    horizon = max((len(a.pass_at_turn) for a in rows), default=0)
    turns = shown_turns(horizon)
    table = _table("pass@turn: share of completed trials known to pass after t turns",
                   ("model", "arm", *(f"t={t}" for t in turns)),
                   caption="Known to pass: a run_checks at the eval's level passed on the workspace as it stood "
                           "then (hidden text assertions included), or the trial had ended and its grade passed.")
    for a in rows:
        table.add_row(escape(a.model), a.arm, *(_pct(a.pass_at(t)) for t in turns))
    return table


def render_agent_summary(rows: list[AgentArmSummary], console: Console) -> None:
    if rows:
        print_table(console, agent_table(rows))
        print_table(console, pass_at_turn_table(rows))


def _lines(text: str, limit: int) -> list[str]:
    lines = text.splitlines() or [""]
    return lines[:limit] + ([f"[... {len(lines) - limit} more lines]"] if len(lines) > limit else [])


def render_trajectory(trial: ReportTrial, console: Console) -> None:
    a = trial.agent
    if a is None:
        return
    passed = f"; known to pass from turn {a.pass_turn}" if a.pass_turn is not None else ""
    head = (f"trajectory {trial.case_id} #{trial.run_index} · {trial.model} · {trial.arm}: {trial.verdict}, "
            f"{a.outcome or 'not ended'} after {a.turns} turns{passed}")
    console.print(f"[bold]{escape(head)}[/]", highlight=False)
    console.print(escape(f"  task: {_lines(a.task, 1)[0][:160]}"), highlight=False)
    for turn in a.trajectory:
        text = f"  {_lines(turn.text, 1)[0][:160]}" if turn.text else ""
        console.print(escape(f" turn {turn.turn} ({turn.input_tokens:,} in / {turn.output_tokens:,} out){text}"),
                      highlight=False)
        for call in turn.calls:
            mark = "ERROR " if call.is_error else ""
            console.print(escape(f"    {call.name} {call.arguments[:160]}"), highlight=False)
            shown = _lines(call.result, RESULT_LINES if call.name == "run_checks" else 1)
            for i, line in enumerate(shown):
                console.print(escape(f"      {'-> ' + mark if i == 0 else '   '}{line[:200]}"), highlight=False)


def render_trajectories(run: ReportRun, console: Console) -> None:
    """Every agent trial of the run, turn by turn."""
    for trial in run.trials:
        if trial.agent is not None:
            render_trajectory(trial, console)


__all__ = ["agent_table", "pass_at_turn_table", "render_agent_summary", "render_trajectories", "render_trajectory"]
