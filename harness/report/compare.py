"""Compare two runs on the same cases (`kernelgrade runs compare A B`): a paired test per model and arm."""

from __future__ import annotations

from pydantic import BaseModel

from harness.common.errors import UserError
from harness.report import stats
from harness.report.model import ARMS, UPSKILL_CASE, Arm, ReportRun, ReportTrial
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
    basis: str = "trial"
    """trial: pairs (model, arm, case, run index), exact McNemar. run: a run imported from upskill is
    compared per run (a run passes when every case of it passed, upskill's rule), unpaired."""
    only_in_a: list[str]
    """'model arm case' keys found only in run A (left out of the test)."""
    only_in_b: list[str]


_WORDS = {"helps": "B better", "hurts": "B worse"}


def per_run(run: ReportRun) -> ReportRun:
    """Each (model, arm, run index) of `run` as one trial on the pseudo-case of an upskill run:
    pass when every case of it passed, fail when one failed; runs with an error or an incomplete
    trial and no failure are left as incomplete. An upskill import is that already."""
    if run.source == "upskill":
        return run
    groups: dict[tuple[str, str, int], list[ReportTrial]] = {}
    for t in run.trials:
        groups.setdefault((t.model, t.arm, t.run_index), []).append(t)
    trials = []
    for (model, arm, index), ts in groups.items():
        verdicts = {t.verdict for t in ts}
        verdict = "fail" if "fail" in verdicts else "pass" if verdicts == {"pass"} else "incomplete"
        trials.append(ReportTrial(run_id=run.run_id, case_id=UPSKILL_CASE, model=model, arm=arm, run_index=index,
                                  verdict=verdict, assertions_passed=sum(t.verdict == "pass" for t in ts),
                                  assertions_total=len(ts)))
    return run.model_copy(update={"trials": trials})


def _compare_per_run(a: ReportRun, b: ReportRun) -> CompareResult:
    """Unpaired: an upskill run and a kernelgrade run are different draws, so no McNemar pairs."""
    a, b = per_run(a), per_run(b)
    rows = []
    groups = sorted({(t.model, t.arm) for t in a.trials} & {(t.model, t.arm) for t in b.trials},
                    key=lambda k: (k[0], ARMS.index(k[1])))
    for model, arm in groups:
        rates = []
        for run in (a, b):
            done = [t.verdict == "pass" for t in run.trials if t.model == model and t.arm == arm
                    and t.verdict in ("pass", "fail")]
            rates.append(sum(done) / len(done) if done else None)
        diff = None if None in rates else rates[1] - rates[0]
        rows.append(CompareRow(model=model, arm=arm, pairs=0, pass_a=rates[0], pass_b=rates[1], diff=diff,
                               diff_lo=None, diff_hi=None, b=0, c=0, p_value=1.0,
                               verdict="per-run rates, not paired"))
    keys = lambda run: {f"{t.model} {t.arm}" for t in run.trials}  # noqa: E731
    return CompareResult(run_a=a.run_id, run_b=b.run_id, rows=rows, basis="run",
                         only_in_a=sorted(keys(a) - keys(b)), only_in_b=sorted(keys(b) - keys(a)))


def compare_runs(a: ReportRun, b: ReportRun, *, n_boot: int = N_BOOT, seed: int = 0) -> CompareResult:
    if "upskill" in (a.source, b.source):
        return _compare_per_run(a, b)
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
