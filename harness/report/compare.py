"""Compare two runs on the same cases (`kernelgrade runs compare A B`): a paired test per model and arm."""

from __future__ import annotations

from pydantic import BaseModel

from harness.common.errors import UserError
from harness.report import stats
from harness.report.model import ARMS, Arm, ReportRun
from harness.report.summary import N_BOOT, bootstrap_difference, paired_outcomes


class CompareRow(BaseModel):
    model: str
    arm: Arm
    pairs: int
    """(case id, run index) completed in both runs."""
    pass_a: float | None
    """Pass rate of run A over the paired trials."""
    pass_b: float | None
    diff: float | None
    """pass_b - pass_a over cases present in both runs (bootstrap over those cases)."""
    diff_lo: float | None
    diff_hi: float | None
    b: int
    """Pairs where only run A passed."""
    c: int
    """Pairs where only run B passed."""
    p_value: float
    verdict: str
    """'B better', 'B worse', 'no measurable effect' or 'not enough runs' (exact McNemar at 0.05)."""


    @property
    def lift(self) -> float | None:
        """Alias of diff (B - A), for gates written in terms of lift."""
        return self.diff


class CompareResult(BaseModel):
    run_a: str
    run_b: str
    rows: list[CompareRow]
    only_in_a: list[str]
    """'model arm case' keys found only in run A (left out of the test)."""
    only_in_b: list[str]


_WORDS = {"helps": "B better", "hurts": "B worse"}


def compare_runs(a: ReportRun, b: ReportRun, *, n_boot: int = N_BOOT, seed: int = 0) -> CompareResult:
    if a.mode != b.mode:
        # A one-shot answer and an agent's trajectory are different measurements: never paired.
        raise UserError(f"runs compare: run {a.run_id} is {a.mode} and run {b.run_id} is {b.mode}; results of "
                        "different modes are never compared (compare two one-shot runs or two agent runs)")
    keys_a = {(t.model, t.arm, t.case_id) for t in a.trials}
    keys_b = {(t.model, t.arm, t.case_id) for t in b.trials}
    common = keys_a & keys_b
    rows: list[CompareRow] = []
    groups = sorted({(m, arm) for m, arm, _ in common}, key=lambda k: (k[0], ARMS.index(k[1])))
    for model, arm in groups:
        cases = {c for m, ar, c in common if m == model and ar == arm}
        ta = [t for t in a.trials if t.model == model and t.arm == arm and t.case_id in cases]
        tb = [t for t in b.trials if t.model == model and t.arm == arm and t.case_id in cases]
        pairs = paired_outcomes(ta, tb)
        nb, nc = stats.discordant_counts(pairs)
        p = stats.mcnemar_exact(nb, nc)
        diff, lo, hi = bootstrap_difference(ta, tb, n_boot, seed)
        words = stats.verdict_words(nb, nc, p)
        rows.append(CompareRow(
            model=model, arm=arm, pairs=len(pairs),
            pass_a=sum(x for x, _ in pairs) / len(pairs) if pairs else None,
            pass_b=sum(y for _, y in pairs) / len(pairs) if pairs else None,
            diff=diff, diff_lo=lo, diff_hi=hi, b=nb, c=nc, p_value=p,
            verdict=_WORDS.get(words, words),
        ))
    fmt = lambda k: " ".join(k)  # noqa: E731
    return CompareResult(run_a=a.run_id, run_b=b.run_id, rows=rows,
                         only_in_a=sorted(fmt(k) for k in keys_a - keys_b),
                         only_in_b=sorted(fmt(k) for k in keys_b - keys_a))
