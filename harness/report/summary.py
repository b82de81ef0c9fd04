"""Report numbers: pure functions from a ReportRun to a Summary (no I/O, no rendering).

Rules (DESIGN.md "Checks and verdicts", "Identity and statistics"):
- pass rate = pass / (pass + fail); error and incomplete trials are counted on their own lines.
- check rates count only trials where the check ran within the level; a check skipped
  because of the level is reported as such, never as 0% or 100%.
- speedups: geometric mean over correct trials only, with their count, keyed by device so
  CPU and GPU figures are never pooled.
- lift: pass(with_skill) - pass(baseline) with a bootstrap over cases; exact McNemar on
  pairs matched by (case id, run index); upskill's rule shown beside it, labelled.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, Field

from harness.kernelbench import metrics as kb_metrics
from harness.report import stats
from harness.report.agent_summary import AgentArmSummary, summarize_agent
from harness.report.model import ARMS, Arm, ReportRun, ReportTrial
from harness.report.roofline import RooflineDevice, roofline_by_device
from harness.common.results import CheckResult
from harness.common.check_table import CHECK_LEVEL
from harness.scoring.verdict import in_level

#: Rate columns: label -> how a trial scores on it (see _rate_outcome).
RATE_COLUMNS: tuple[str, ...] = ("build_toml", "compile", "run", "correct")
#: The check each rate column reads.
RATE_CHECK: dict[str, str] = {"build_toml": "build_toml", "compile": "compile",
                              "run": "run", "correct": "run"}
UPSKILL_RULE_LABEL = "upskill rule"
N_BOOT = 10_000


class Rate(BaseModel):
    """k of n with a Wilson interval; n = 0 with `skipped` set when the check never ran."""

    k: int = 0
    n: int = 0
    rate: float | None = None
    lo: float | None = None
    hi: float | None = None
    skipped: str | None = None
    """Why there is no figure, e.g. 'level text' or 'not required'."""


class SpeedupSummary(BaseModel):
    device: str
    """cuda or cpu (figures on cpu are labelled CPU)."""
    geomean: float
    lo: float
    hi: float
    count: int
    """Correct trials with a measured speedup."""


class ArmSummary(BaseModel):
    model: str
    arm: Arm
    n: int
    """All trials of this model and arm."""
    passed: int
    failed: int
    errors: int
    incomplete: int
    pass_rate: Rate
    avg_assertions_passed: float | None
    avg_assertions_total: float | None
    rates: dict[str, Rate]
    """RATE_COLUMNS -> rate among completed trials where the check ran."""
    fast_p: dict[str, dict[str, float | None]]
    """device -> {'1.0', '1.5', '2.0' -> KernelBench fast_p over completed trials whose run
    check was within the level}; empty when no trial reached the run level."""
    fast: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    """device -> {"fast_0", "fast_1", "fast_2" -> share of trials correct and faster than p times
    the reference}, KernelBench's definition (harness.kernelbench.metrics), over the same trials
    as fast_p; fast_0 is the correct rate."""
    speedup: list[SpeedupSummary]
    """One entry per device; never pooled across devices."""
    pass_at_k: dict[str, float]
    """'k' -> mean over cases of unbiased pass@k, for k = 1 and k = the fewest completed runs
    of any case (when that is > 1); empty when no case completed."""
    avg_input_tokens: float | None
    avg_output_tokens: float | None
    avg_cached_tokens: float | None
    cost_usd: float | None
    """Total cost of the arm; None when no trial had a price."""
    cost_per_trial: float | None

    @property
    def completed(self) -> int:
        return self.passed + self.failed

    @property
    def avg_total_tokens(self) -> float | None:
        if self.avg_input_tokens is None or self.avg_output_tokens is None:
            return None
        return self.avg_input_tokens + self.avg_output_tokens


class LiftLine(BaseModel):
    model: str
    pass_baseline: float | None
    pass_with: float | None
    lift: float | None
    lift_lo: float | None
    lift_hi: float | None
    pairs: int
    """Pairs (case id, run index) with a completed trial in both arms."""
    b: int
    """Pairs where only the baseline passed."""
    c: int
    """Pairs where only the with-skill arm passed."""
    p_value: float
    verdict: stats.VerdictWords
    token_savings: float | None
    upskill_beneficial: bool
    upskill_label: str = UPSKILL_RULE_LABEL


class ParetoRow(BaseModel):
    model: str
    arm: Arm
    pass_rate: float | None
    cost_per_trial: float | None
    avg_tokens: float | None
    basis: str
    """'cost' when every row has a price, else 'tokens'."""
    on_front: bool
    """No other row passes at least as often for no more cost (tokens), strictly better in one."""


class SkipLine(BaseModel):
    check: str
    reason: str
    count: int


class ErrorLine(BaseModel):
    trial: str
    where: str
    reason: str


class Summary(BaseModel):
    run_id: str
    level: str | None
    device: str | None
    arms: list[ArmSummary]
    lifts: list[LiftLine]
    pareto: list[ParetoRow]
    skipped: list[SkipLine] = Field(default_factory=list)
    """Every skipped check with its reason and how many trials it hit."""
    errors: list[ErrorLine] = Field(default_factory=list)
    """Trial errors and check errors, never folded into failures."""
    agent: list[AgentArmSummary] = Field(default_factory=list)
    """Agent runs: turns, tool calls, pass@turn, skill reads per model and arm (empty one-shot)."""
    roofline: list[RooflineDevice] = Field(default_factory=list)
    """Per device timed on: its limits and each timed kernel's roofline figures (never pooled)."""

    def arm(self, model: str, arm: Arm) -> ArmSummary | None:
        return next((a for a in self.arms if a.model == model and a.arm == arm), None)


def rate(k: int, n: int, *, skipped: str | None = None) -> Rate:
    if n == 0:
        return Rate(k=0, n=0, skipped=skipped)
    lo, hi = stats.wilson_interval(k, n)
    return Rate(k=k, n=n, rate=k / n, lo=lo, hi=hi)


def _completed(trials: Iterable[ReportTrial]) -> list[ReportTrial]:
    return [t for t in trials if t.verdict in ("pass", "fail")]


def _skipped_for_level(check: CheckResult, level: str | None) -> bool:
    if check.status != "skip":
        return False
    if check.reason.startswith("level"):
        return True
    return level is not None and check.name in CHECK_LEVEL and not in_level(check.name, level)


def _ran(check: CheckResult) -> bool:
    """The run check executed the candidate (it may still have been wrong)."""
    if check.status == "pass":
        return True
    if check.status != "fail":
        return False
    m = check.metrics
    return bool(m.get("executed")) or bool(m.get("calls_ok")) or m.get("max_abs_err") is not None


def _rate_outcome(trial: ReportTrial, column: str, level: str | None) -> bool | str | None:
    """True/False for a counted outcome, a skip reason when skipped for level, None when absent."""
    check = trial.check(RATE_CHECK[column])
    if check is None or check.status == "error":
        return None  # absent, or a harness fault: counted on the errors line, not as a failure
    if _skipped_for_level(check, level):
        return check.reason or f"level {level}"
    if column == "run":
        return _ran(check)
    return check.status == "pass"


def speedup_of(trial: ReportTrial) -> float | None:
    for name in ("speedup", "run"):
        check = trial.check(name)
        if check is not None and check.status != "skip":
            value = check.metrics.get("speedup")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
    return None


def is_correct(trial: ReportTrial) -> bool:
    check = trial.check("run")
    return check is not None and check.status == "pass"


def device_of(trial: ReportTrial, run: ReportRun) -> str:
    """The device a trial's figures were measured on, and the baseline when it is not eager
    PyTorch: speedups against different baselines are never pooled."""
    speed = trial.check("speedup")
    baseline = speed.metrics.get("baseline") if speed is not None else None
    suffix = f" vs {baseline}" if baseline not in (None, "eager PyTorch") else ""
    for name in ("speedup", "run"):
        check = trial.check(name)
        if check is not None and check.device:
            return check.device + suffix
    return (trial.device or run.device or "unknown") + suffix


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_arm(run: ReportRun, model: str, arm: Arm, *, n_boot: int = N_BOOT, seed: int = 0) -> ArmSummary:
    trials = [t for t in run.trials if t.model == model and t.arm == arm]
    done = _completed(trials)
    verdicts = Counter(t.verdict for t in trials)

    rates: dict[str, Rate] = {}
    for column in RATE_COLUMNS:
        outcomes = [_rate_outcome(t, column, run.level) for t in done]
        counted = [o for o in outcomes if isinstance(o, bool)]
        skip_reasons = [o for o in outcomes if isinstance(o, str)]
        reason = skip_reasons[0] if skip_reasons else "not required"
        rates[column] = rate(sum(counted), len(counted), skipped=reason)

    # fast_p over completed trials whose run check was within the level, per device.
    timed: dict[str, list[tuple[bool, float | None]]] = defaultdict(list)
    scored: dict[str, list[kb_metrics.TrialScore]] = defaultdict(list)
    for t in done:
        if isinstance(_rate_outcome(t, "correct", run.level), bool):
            timed[device_of(t, run)].append((is_correct(t), speedup_of(t)))
            scored[device_of(t, run)].append(kb_metrics.score_from_checks({c.name: c for c in t.checks}))
    fast = {device: {f"{p:.1f}": stats.fast_p(rows, p) for p in stats.FAST_P_THRESHOLDS}
            for device, rows in sorted(timed.items())}
    kb_fast = {device: kb_metrics.fast_scores(rows) for device, rows in sorted(scored.items())}

    by_device: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in done:
        s = speedup_of(t)
        if is_correct(t) and s is not None:
            by_device[device_of(t, run)][t.case_id].append(s)
    speedups = []
    for device in sorted(by_device):
        groups = list(by_device[device].values())
        g = stats.bootstrap_geomean(groups, n_boot=n_boot, seed=seed)
        if g is not None:
            speedups.append(SpeedupSummary(device=device, geomean=g[0], lo=g[1], hi=g[2],
                                           count=sum(len(x) for x in groups)))

    per_case: dict[str, list[bool]] = defaultdict(list)
    for t in done:
        per_case[t.case_id].append(t.verdict == "pass")
    pass_k: dict[str, float] = {}
    if per_case:
        k_max = min(len(v) for v in per_case.values())
        for k in sorted({1, k_max}):
            pass_k[str(k)] = sum(stats.pass_at_k(len(v), sum(v), k) for v in per_case.values()) / len(per_case)

    # Tokens: every trial that got an answer (errors may have no tokens).
    answered = [t for t in trials if t.verdict != "error"]
    costs = [t.cost_usd for t in trials if t.cost_usd is not None]
    cost = sum(costs) if costs else None
    return ArmSummary(
        model=model, arm=arm, n=len(trials),
        passed=verdicts["pass"], failed=verdicts["fail"],
        errors=verdicts["error"], incomplete=verdicts["incomplete"],
        pass_rate=rate(verdicts["pass"], len(done), skipped="no completed trials"),
        avg_assertions_passed=_mean([t.assertions_passed for t in done]),
        avg_assertions_total=_mean([t.assertions_total for t in done]),
        rates=rates, fast_p=fast, fast=kb_fast, speedup=speedups, pass_at_k=pass_k,
        avg_input_tokens=_mean([t.input_tokens for t in answered]),
        avg_output_tokens=_mean([t.output_tokens for t in answered]),
        avg_cached_tokens=_mean([t.cached_tokens for t in answered]),
        cost_usd=cost,
        cost_per_trial=cost / len(costs) if costs else None,
    )


def paired_outcomes(a: list[ReportTrial], b: list[ReportTrial]) -> list[tuple[bool, bool]]:
    """(a passed, b passed) for each (case id, run index) completed on both sides."""
    left = {(t.case_id, t.run_index): t.verdict == "pass" for t in _completed(a)}
    right = {(t.case_id, t.run_index): t.verdict == "pass" for t in _completed(b)}
    return [(left[k], right[k]) for k in sorted(left.keys() & right.keys())]


def case_outcomes(a: list[ReportTrial], b: list[ReportTrial]) -> list[tuple[list[float], list[float]]]:
    """Per case: (outcomes in a, outcomes in b), completed trials only, for the case bootstrap."""
    cases: dict[str, tuple[list[float], list[float]]] = {}
    for side, trials in ((0, a), (1, b)):
        for t in _completed(trials):
            cases.setdefault(t.case_id, ([], []))[side].append(1.0 if t.verdict == "pass" else 0.0)
    return [cases[k] for k in sorted(cases)]


def bootstrap_difference(a: list[ReportTrial], b: list[ReportTrial], n_boot: int = N_BOOT,
                         seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """pass(b) - pass(a) with a percentile interval, resampling cases; Nones when a side is empty."""
    groups = case_outcomes(a, b)
    if not any(x for x, _ in groups) or not any(y for _, y in groups):
        return None, None, None
    diff, lo, hi = stats.paired_bootstrap_lift(groups, n_boot=n_boot, seed=seed)
    return tuple(None if math.isnan(x) else x for x in (diff, lo, hi))


def lift_line(run: ReportRun, model: str, base: ArmSummary, with_: ArmSummary,
              *, n_boot: int = N_BOOT, seed: int = 0) -> LiftLine:
    trials_b = [t for t in run.trials if t.model == model and t.arm == "baseline"]
    trials_w = [t for t in run.trials if t.model == model and t.arm == "with_skill"]
    pairs = paired_outcomes(trials_b, trials_w)
    b, c = stats.discordant_counts(pairs)
    p = stats.mcnemar_exact(b, c)
    lift, lo, hi = bootstrap_difference(trials_b, trials_w, n_boot, seed)
    savings = None
    if base.avg_total_tokens is not None and with_.avg_total_tokens is not None:
        savings = stats.token_savings(with_.avg_total_tokens, base.avg_total_tokens)
    return LiftLine(
        model=model, pass_baseline=base.pass_rate.rate, pass_with=with_.pass_rate.rate,
        lift=lift, lift_lo=lo, lift_hi=hi, pairs=len(pairs), b=b, c=c, p_value=p,
        verdict=stats.verdict_words(b, c, p), token_savings=savings,
        upskill_beneficial=lift is not None and stats.upskill_beneficial(lift, savings),
    )


def pareto(arms: list[ArmSummary]) -> list[ParetoRow]:
    """Which (model, arm) rows are worth paying for: pass rate against cost (or tokens)."""
    use_cost = bool(arms) and all(a.cost_per_trial is not None for a in arms)
    basis = "cost" if use_cost else "tokens"

    def spend(a: ArmSummary) -> float | None:
        return a.cost_per_trial if use_cost else a.avg_total_tokens

    rows = []
    for a in arms:
        on_front = a.pass_rate.rate is not None and spend(a) is not None
        if on_front:
            for o in arms:
                if o is a or o.pass_rate.rate is None or spend(o) is None:
                    continue
                if (o.pass_rate.rate >= a.pass_rate.rate and spend(o) <= spend(a)
                        and (o.pass_rate.rate > a.pass_rate.rate or spend(o) < spend(a))):
                    on_front = False
                    break
        rows.append(ParetoRow(model=a.model, arm=a.arm, pass_rate=a.pass_rate.rate,
                              cost_per_trial=a.cost_per_trial, avg_tokens=a.avg_total_tokens,
                              basis=basis, on_front=on_front))
    return rows


def _skips_and_errors(run: ReportRun) -> tuple[list[SkipLine], list[ErrorLine]]:
    skips: Counter[tuple[str, str]] = Counter()
    errors: list[ErrorLine] = []
    for t in run.trials:
        if t.verdict == "error":
            errors.append(ErrorLine(trial=t.key, where="trial", reason=t.error or t.verdict_reason or "error"))
        for c in t.checks:
            if c.status == "skip":
                skips[(c.name, c.reason or "skipped")] += 1
            elif c.status == "error" and t.verdict != "error":
                errors.append(ErrorLine(trial=t.key, where=c.name, reason=c.reason))
    lines = [SkipLine(check=k[0], reason=k[1], count=n) for k, n in sorted(skips.items())]
    return lines, errors


def summarize(run: ReportRun, *, n_boot: int = N_BOOT, seed: int = 0) -> Summary:
    arms: list[ArmSummary] = []
    lifts: list[LiftLine] = []
    for model in run.models:
        present = {t.arm for t in run.trials if t.model == model}
        per_arm = {arm: summarize_arm(run, model, arm, n_boot=n_boot, seed=seed)
                   for arm in ARMS if arm in present}
        arms.extend(per_arm.values())
        if len(per_arm) == 2:
            lifts.append(lift_line(run, model, per_arm["baseline"], per_arm["with_skill"],
                                   n_boot=n_boot, seed=seed))
    skipped, errors = _skips_and_errors(run)
    return Summary(run_id=run.run_id, level=run.level, device=run.device, arms=arms,
                   lifts=lifts, pareto=pareto(arms), skipped=skipped, errors=errors, agent=summarize_agent(run),
                   roofline=roofline_by_device(run))


def check_gates(summary: Summary, fail_under: float | None = None,
                min_lift: float | None = None) -> list[str]:
    """Messages for gates that did not hold; empty when all held (or none was asked for).

    --fail-under applies to each model's with-skill pass rate (every arm when the run has no
    with-skill arm); --min-lift to each model's lift. A missing figure fails its gate.
    """
    failed: list[str] = []
    if fail_under is not None:
        gated = [a for a in summary.arms if a.arm == "with_skill"] or summary.arms
        if not gated:
            failed.append(f"--fail-under {fail_under:g}: no trials in the run")
        for a in gated:
            r = a.pass_rate.rate
            if r is None:
                failed.append(f"{a.model} {a.arm}: no completed trials (--fail-under {fail_under:g})")
            elif r < fail_under:
                failed.append(f"{a.model} {a.arm}: pass rate {r:.3f} < --fail-under {fail_under:g}")
    if min_lift is not None:
        if not summary.lifts:
            failed.append(f"--min-lift {min_lift:g}: no model has both arms")
        for line in summary.lifts:
            if line.lift is None:
                failed.append(f"{line.model}: no lift (an arm has no completed trials) (--min-lift {min_lift:g})")
            elif line.lift < min_lift:
                failed.append(f"{line.model}: lift {line.lift:+.3f} < --min-lift {min_lift:g}")
    return failed
