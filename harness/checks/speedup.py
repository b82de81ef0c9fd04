"""The `speedup` check: time the candidate and the reference in alternating child
processes (harness.execute.timing.run_timing: the parent's own clock around every call,
the child's clock only where the parent's confirms it), check the outputs of sampled timed
calls as the parent read them at return, and report speedup = reference median / candidate
median, labelled with the device.

Passes when timing succeeded and, on CUDA, speedup >= the case's min_speedup. On CPU
the figure is reported (labelled CPU) but never gated: min_speedup is a GPU target.
The physics floor (bytes moved / the bandwidth limit of the device timed on, harness.limits)
applies on CPU and CUDA; the roofline figures (bytes, FLOPs, achieved rates, limits, fractions)
name the device and the limit they are measured against (docs/limits.md).
"""

from __future__ import annotations

import json

from harness.checks.base import CheckContext
from harness.inputs.reference import load_reference_module
from harness.common.results import CheckResult, Finding
from harness.execute.judge import CallJudgement, judge_outputs, summarize
from harness.execute.runner import RunPlan
from harness.execute.timing import TimingOutcome, run_timing
from harness.limits import device_limits, floor_problem, roofline_metrics, roofline_summary

NAME = "speedup"
#: What a speedup is against (TimingPlan.baseline -> the name reports carry).
BASELINES = {"eager": "eager PyTorch", "compile": "torch.compile"}


def _check_timed_outputs(plan: RunPlan, outcome: TimingOutcome) -> list[tuple[str, str]]:
    atol, rtol = plan.tolerances[plan.timing.dtype]
    problems: list[tuple[str, str]] = []
    earlier: list[tuple[str, list, list]] = []
    for k, outputs in outcome.checked:
        refd = outcome.reference_outputs.get(k)
        label = f"timed call {k}"
        if refd is None:
            problems.append(("missing", f"{label}: no reference output"))
            continue
        for out in outputs:
            if out.problem:
                problems.append((out.problem[0], f"{label}: {out.problem[1]}"))
        outs = [o.tensor for o in outputs]
        judged = {i for i, o in enumerate(outputs) if o.problem is None}
        judgement = CallJudgement()
        judge_outputs(outs, refd["x2"], ref_inputs=list(outcome.inputs[k].real), earlier=earlier, atol=atol,
                      rtol=rtol, label=label, judgement=judgement, judged=judged, decoys=refd)
        problems.extend(judgement.problems)
        earlier.append((label, outs, refd["x2"]))
    return problems


def check_speedup(ctx: CheckContext) -> CheckResult:
    plan: RunPlan | None = ctx.state.get("run_plan")  # type: ignore[assignment]
    if plan is None or plan.timing is None:
        return CheckResult.skip(NAME, "blocked by run (no passing run to time)")
    limits = device_limits(ctx.device)  # measured (once, cached) here, where the timing runs, before it
    outcome = run_timing(plan)
    problems = list(outcome.problems)
    if outcome.patched:
        problems.insert(0, ("monkeypatch", f"monkeypatches {', '.join(outcome.patched)} (checker or timer)"))
    if not outcome.candidate.times_ns:
        findings = [Finding(severity="error", key=k, reason=m) for k, m in summarize(problems)]
        result = CheckResult.from_findings(NAME, findings, metrics={"device": ctx.device})
        result.device = ctx.device
        return result
    problems += _check_timed_outputs(plan, outcome)
    ref = load_reference_module(plan.reference_path)
    tp = plan.timing
    cand, refside = outcome.candidate.spread(), outcome.reference.spread()
    speedup = outcome.speedup
    moved = ref.bytes_moved(tuple(tp.shape), tp.dtype)  # either may be None: not counted
    flop = ref.flops(tuple(tp.shape), tp.dtype)
    cand_s = cand["median_ns"] / 1e9
    metrics: dict = {
        "device": ctx.device, "speedup": speedup, "baseline": BASELINES[tp.baseline],
        "candidate_median_us": cand["median_ns"] / 1e3,
        "reference_median_us": refside["median_ns"] / 1e3, "candidate_min_us": cand["min_ns"] / 1e3,
        "candidate_iqr_rel": cand["iqr_rel"], "reference_iqr_rel": refside["iqr_rel"],
        "candidate_round_spread_rel": cand["round_spread_rel"], "timed_iters": cand["n"],
        "rounds": len(outcome.candidate.round_medians_ns), "timing_shape": "x".join(map(str, tp.shape)),
        "timing_dtype": tp.dtype, **roofline_metrics(bytes_moved=moved, flops=flop, seconds=cand_s, limits=limits),
        "timed_outputs_checked": len(outcome.checked),
        "timer": ("cuda events" if ctx.device == "cuda" else "perf_counter_ns")
                 + ", cross-checked by the parent's clock",
        **outcome.metrics,
    }
    notes: list[Finding] = []
    min_speedup = ctx.case.kernel.min_speedup if ctx.case is not None and ctx.case.kernel else None
    floor = floor_problem(cand["median_ns"], moved, limits)
    if floor is not None:
        problems.append(("physics", floor))
    if ctx.device == "cuda":
        if min_speedup is not None and speedup < min_speedup:
            problems.append(("slow", f"speedup {speedup:.2f}x is below the case's min_speedup {min_speedup:g}x"))
    elif min_speedup is not None:
        notes.append(Finding(severity="note", key="min_speedup",
                             reason=f"min_speedup {min_speedup:g}x is a GPU target; not applied to a CPU figure"))
    findings = [Finding(severity="error", key=k, reason=m) for k, m in summarize(problems)] + notes
    label = ctx.device.upper()
    versus = "reference" if tp.baseline == "eager" else f"reference under {BASELINES[tp.baseline]}"
    ok_reason = (f"{label} speedup {speedup:.2f}x (candidate {cand['median_ns'] / 1e3:.1f} us vs {versus} "
                 f"{refside['median_ns'] / 1e3:.1f} us median of {cand['n']}, shape {metrics['timing_shape']} "
                 f"{tp.dtype})")
    if (roof := roofline_summary(metrics)) is not None:
        ok_reason += f"; {roof}"
    log_path = ctx.artifacts / "speedup.json"
    log_path.write_text(json.dumps({"metrics": metrics, "candidate_ns": outcome.candidate.times_ns,
                                    "reference_ns": outcome.reference.times_ns,
                                    "candidate_parent_ns": outcome.candidate.parent_ns,
                                    "candidate_inproc_ns": outcome.candidate.inproc_ns,
                                    "reference_parent_ns": outcome.reference.parent_ns,
                                    "reference_inproc_ns": outcome.reference.inproc_ns}, indent=1))
    result = CheckResult.from_findings(NAME, findings, ok_reason=ok_reason, metrics=metrics,
                                       log_path=str(log_path))
    result.device = ctx.device
    return result


__all__ = ["BASELINES", "check_speedup"]
