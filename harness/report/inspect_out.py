"""A kernelgrade run as inspect_ai eval logs (`kernelgrade runs export ID --format inspect -o DIR`),
written with inspect_ai's own log API so `inspect view --log-dir DIR` opens them.

inspect_ai logs one task on one model, so a run becomes one log per (model, arm), e.g.
`DIR/<run>_<model>_<arm>.eval`. Each trial is a sample: id = case id, epoch = run index + 1,
input = the prompt (system + user messages), output = the stored answer, target = the case's
`expected.contains`. Scores: `verdict` (C pass, I fail; errored and incomplete trials carry an
error or N), and one score per check (`check_build_toml`, `check_run`, ...: its status, with
its reason, findings and figures as metadata). Errored trials keep their error. inspect_ai is
an optional extra: `pip install 'kernelgrade[inspect]'`.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.common.errors import UserError
from harness.report.model import ReportRun, ReportTrial
from harness.report.summary import summarize

VERDICT_VALUE = {"pass": "C", "fail": "I", "incomplete": "N"}


def _inspect():
    try:
        import inspect_ai.log as log
        import inspect_ai.model as model
        import inspect_ai.scorer as scorer
    except ImportError:
        raise UserError("--format inspect needs inspect_ai: pip install 'kernelgrade[inspect]'") from None
    return log, model, scorer


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _split_prompt(prompt: str) -> tuple[str, str]:
    """The stored "[system]\\n...\\n\\n[user]\\n..." back into its two messages."""
    if prompt.startswith("[system]\n") and "\n\n[user]\n" in prompt:
        system, user = prompt.removeprefix("[system]\n").split("\n\n[user]\n", 1)
        return system, user
    return "", prompt


def _sample(trial: ReportTrial, targets: dict[str, list[str]], log, model, scorer):
    system, user = _split_prompt(trial.prompt)
    messages = ([model.ChatMessageSystem(content=system)] if system else []) + [model.ChatMessageUser(content=user)]
    output = model.ModelOutput.from_content(trial.model, trial.answer) if trial.answer else model.ModelOutput()
    if trial.answer:
        messages.append(model.ChatMessageAssistant(content=trial.answer, model=trial.model))
    scores = {}
    if trial.verdict != "error":
        scores["verdict"] = scorer.Score(
            value=VERDICT_VALUE[trial.verdict], answer=None, explanation=trial.verdict_reason,
            metadata={"assertions_passed": trial.assertions_passed, "assertions_total": trial.assertions_total,
                      "device": trial.device})
    for check in trial.checks:
        scores[f"check_{check.name}"] = scorer.Score(
            value=check.status, explanation=check.reason,
            metadata={"findings": [f.model_dump() for f in check.findings], "metrics": check.metrics,
                      "device": check.device})
    error = None
    if trial.verdict == "error":
        from inspect_ai._util.error import EvalError

        error = EvalError(message=trial.error or trial.verdict_reason or "error", traceback="", traceback_ansi="")
    usage = model.ModelUsage(input_tokens=trial.input_tokens, output_tokens=trial.output_tokens,
                             total_tokens=trial.input_tokens + trial.output_tokens,
                             input_tokens_cache_read=trial.cached_tokens or None)
    return log.EvalSample(
        id=trial.case_id, epoch=trial.run_index + 1, input=messages[:-1] if trial.answer else messages,
        target=targets.get(trial.case_id, []), messages=messages, output=output, scores=scores or None,
        error=error, model_usage={trial.model: usage} if trial.answer else {},
        metadata={"kernelgrade_run": trial.run_id, "arm": trial.arm, "verdict": trial.verdict,
                  "verdict_reason": trial.verdict_reason, "cost_usd": trial.cost_usd, "latency_s": trial.latency_s})


def write_inspect_logs(run: ReportRun, out_dir: Path, *, targets: dict[str, list[str]] | None = None,
                       task: str | None = None) -> list[Path]:
    """One inspect eval log per (model, arm) of `run` under `out_dir`; returns the paths written."""
    log, model, scorer = _inspect()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(run, n_boot=200)
    created = (run.created.isoformat() if run.created else "")
    written: list[Path] = []
    for m in run.models:
        for arm in run.arms:
            trials = [t for t in run.trials if t.model == m and t.arm == arm]
            if not trials:
                continue
            arm_summary = summary.arm(m, arm)
            samples = [_sample(t, targets or {}, log, model, scorer) for t in trials]
            name = task or f"kernelgrade/{run.skill_name or 'run'}"
            metrics = {"accuracy": log.EvalMetric(name="accuracy", value=(arm_summary.pass_rate.rate
                                                                           if arm_summary and arm_summary.pass_rate.rate
                                                                           is not None else 0.0))}
            eval_log = log.EvalLog(
                status="success" if all(t.verdict != "error" for t in trials) else "error",
                eval=log.EvalSpec(
                    run_id=run.run_id, created=created or "1970-01-01T00:00:00+00:00", task=f"{name}/{arm}",
                    dataset=log.EvalDataset(name=run.skill_name, samples=len({t.case_id for t in trials}),
                                            sample_ids=sorted({t.case_id for t in trials})),
                    model=m, config=log.EvalConfig(epochs=max(t.run_index for t in trials) + 1),
                    metadata={"kernelgrade_run": run.run_id, "arm": arm, "mode": run.mode, "level": run.level,
                              "device": run.device, "skill_sha256": run.skill_sha256, "notes": run.notes}),
                results=log.EvalResults(
                    total_samples=len(trials), completed_samples=sum(t.verdict in ("pass", "fail") for t in trials),
                    scores=[log.EvalScore(name="verdict", scorer="kernelgrade", metrics=metrics,
                                          scored_samples=sum(t.verdict != "error" for t in trials),
                                          unscored_samples=sum(t.verdict == "error" for t in trials))],
                    metadata={"pass_rate_wilson_95": [arm_summary.pass_rate.lo, arm_summary.pass_rate.hi]
                              if arm_summary else None}),
                samples=samples)
            path = out_dir / f"{_safe(run.run_id)}_{_safe(m)}_{arm}.eval"
            log.write_eval_log(eval_log, path)
            written.append(path)
    return written


__all__ = ["write_inspect_logs"]
