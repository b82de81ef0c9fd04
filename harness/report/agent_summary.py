"""Agent-mode figures per model and arm: pure functions from a ReportRun (no I/O).

Beside pass rate and lift (harness/report/summary.py, the same for both modes): turns used,
how trajectories ended, tool calls by name, tokens and cost per trial, pass@turn, and in the
with-skill arm how often SKILL.md was read and which other skill files were. Pass@turn and
the read shares count completed trials (pass or fail), as the pass rate does.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from harness.report.model import ARMS, Arm, ReportRun, ReportTrial

RAN_OUT = ("ran_out_turns", "ran_out_tokens", "ran_out_context")
SHOWN_TURNS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
"""Turns shown as pass@turn columns in tables (the JSON has every turn)."""


class AgentArmSummary(BaseModel):
    model: str
    arm: Arm
    trials: int
    """Completed trials (pass or fail) with a stored trajectory."""
    avg_turns: float | None
    max_turns_used: int
    outcomes: dict[str, int] = Field(default_factory=dict)
    """submitted, final_message, ran_out_turns, ran_out_tokens, ran_out_context -> trials."""
    ran_out: int = 0
    tool_calls: dict[str, int] = Field(default_factory=dict)
    """Tool name -> calls over the arm's trials (names the model made up included)."""
    tool_calls_per_trial: float | None = None
    tool_errors: int = 0
    tokens_per_trial: float | None = None
    """Input plus output tokens, summed over a trial's turns, averaged over trials."""
    cost_per_trial: float | None = None
    pass_at_turn: list[float] = Field(default_factory=list)
    """[t - 1] -> share of completed trials known to pass after turn t, for t = 1 .. horizon."""
    skill_md_read: int | None = None
    """With-skill trials that read skill/SKILL.md; None where there is no skill/ (baseline, inline)."""
    references_read: dict[str, int] = Field(default_factory=dict)
    """Other skill files (path inside the skill) -> trials that read them."""

    @property
    def skill_md_share(self) -> float | None:
        return None if self.skill_md_read is None or not self.trials else self.skill_md_read / self.trials

    def pass_at(self, turn: int) -> float | None:
        if not self.pass_at_turn:
            return None
        return self.pass_at_turn[min(turn, len(self.pass_at_turn)) - 1]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_agent_arm(run: ReportRun, model: str, arm: Arm) -> AgentArmSummary:
    trials: list[ReportTrial] = [t for t in run.trials if t.model == model and t.arm == arm
                                 and t.agent is not None and t.verdict in ("pass", "fail")]
    stats = [t.agent for t in trials if t.agent is not None]
    horizon = max([run.max_turns or 0, *(s.turns for s in stats)]) if stats else 0
    calls: Counter[str] = Counter()
    refs: Counter[str] = Counter()
    for s in stats:
        calls.update(s.tool_calls)
        refs.update(s.references_read)
    outcomes = Counter(s.outcome or "not ended" for s in stats)
    costs = [t.cost_usd for t in trials if t.cost_usd is not None]
    skill_folder = arm == "with_skill" and run.skill_delivery != "inline"
    return AgentArmSummary(
        model=model, arm=arm, trials=len(stats), avg_turns=_mean([s.turns for s in stats]),
        max_turns_used=max((s.turns for s in stats), default=0),
        outcomes=dict(sorted(outcomes.items())), ran_out=sum(outcomes[o] for o in RAN_OUT),
        tool_calls=dict(sorted(calls.items())),
        tool_calls_per_trial=sum(calls.values()) / len(stats) if stats else None,
        tool_errors=sum(s.tool_errors for s in stats),
        tokens_per_trial=_mean([t.input_tokens + t.output_tokens for t in trials]),
        cost_per_trial=sum(costs) / len(costs) if costs else None,
        pass_at_turn=[sum(s.passed_by(turn) for s in stats) / len(stats) for turn in range(1, horizon + 1)]
        if stats else [],
        skill_md_read=sum(s.skill_md_read for s in stats) if skill_folder else None,
        references_read=dict(sorted(refs.items())) if skill_folder else {},
    )


def summarize_agent(run: ReportRun) -> list[AgentArmSummary]:
    """One entry per model and arm of an agent run; [] for a one-shot run."""
    if run.mode != "agent":
        return []
    present = {(t.model, t.arm) for t in run.trials}
    return [summarize_agent_arm(run, model, arm) for model in run.models for arm in ARMS if (model, arm) in present]


def shown_turns(horizon: int) -> list[int]:
    return [t for t in SHOWN_TURNS if t < horizon] + ([horizon] if horizon else [])


__all__ = ["RAN_OUT", "AgentArmSummary", "shown_turns", "summarize_agent", "summarize_agent_arm"]
