"""A generate run's judgement of its own eval runs: pass rates per arm, the failures the teacher sees,
and the held-out verdict per model."""

from __future__ import annotations

from typing import Any

from harness.workflows.generate_context import GenerateContext
from harness.workflows.generate_options import (
    ANSWER_CLIP,
    ModelVerdict,
)


def pass_rates(ctx: GenerateContext, run_id: str, arm: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    trials = ctx.store.trials(run_id)
    for model in ctx.opts.students:
        verdicts = [t.grade.score.verdict for t in trials
                    if t.model == model and t.arm == arm and t.grade]
        done = [v for v in verdicts if v in ("pass", "fail")]
        out[model] = (sum(v == "pass" for v in done) / len(done)) if done else None
    return out


def train_failures(ctx: GenerateContext, run_id: str) -> list[dict[str, Any]]:
    """With-skill failures on train, for the teacher: input, expected, why, answer (clipped)."""
    trials = ctx.store.trials(run_id)
    run = ctx.store.get_run(run_id)
    cases = {c["id"]: c for c in run.cases}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for t in trials:
        if t.arm != "with_skill" or not t.grade or t.grade.score.verdict != "fail" or t.case_id in seen:
            continue
        seen.add(t.case_id)  # one failing answer per case keeps the prompt small
        case = cases[t.case_id]
        failing = [f"{r.name}: {r.reason}" for r in t.grade.results if r.status == "fail"]
        answer = t.completion.text if t.completion else ""
        out.append({"case_id": t.case_id, "input": case["input"], "expected": case.get("expected", {}),
                    "why": "; ".join(failing) or t.grade.score.reason,
                    "answer": answer if len(answer) <= ANSWER_CLIP else answer[:ANSWER_CLIP] + " [...]"})
    return out


def mean_rate(values: list[float | None]) -> float:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("-inf")  # a sort key: unmeasured ranks last


def holdout_verdicts(ctx: GenerateContext, holdout_run: str, block_tokens: int) -> list[ModelVerdict]:
    from harness.report.from_store import report_run
    from harness.report.summary import summarize

    summary = summarize(report_run(ctx.store, holdout_run))
    out = []
    for line in summary.lifts:
        per_1k = line.lift / block_tokens * 1000 if line.lift is not None and block_tokens else None
        interval = (f", 95% CI [{line.lift_lo:+.2f}, {line.lift_hi:+.2f}]"
                    if line.lift_lo is not None and line.lift_hi is not None else "")
        figures = (f"held-out pass {line.pass_baseline:.0%} -> {line.pass_with:.0%} ({line.lift:+.2f}{interval}; "
                   f"McNemar p={line.p_value:.3g}, {line.b}+{line.c} discordant of {line.pairs} pairs)"
                   if line.lift is not None and line.pass_baseline is not None and line.pass_with is not None
                   else f"no completed held-out pairs ({line.pairs})")
        if line.verdict == "helps":
            use, statement = True, f"the skill helps {line.model}: {figures}."
        elif line.verdict == "hurts":
            use, statement = False, (f"the skill HURTS {line.model}: {figures}. Do not use it with {line.model}.")
        elif line.verdict == "not enough runs":
            use, statement = False, (f"the skill is NOT shown to help {line.model}: {figures}; too few discordant "
                                     f"pairs to tell (add held-out cases or --runs). Do not use it with "
                                     f"{line.model} on this evidence.")
        else:
            use, statement = False, (f"the skill does NOT help {line.model} measurably: {figures}. "
                                     f"Do not use it with {line.model}.")
        base, with_ = summary.arm(line.model, "baseline"), summary.arm(line.model, "with_skill")
        out.append(ModelVerdict(**line.model_dump(), tokens_baseline=base.avg_total_tokens if base else None,
                                tokens_with=with_.avg_total_tokens if with_ else None,
                                lift_per_1k_tokens=per_1k, use=use, statement=statement))
    return out


__all__ = ["holdout_verdicts", "mean_rate", "pass_rates", "train_failures"]
