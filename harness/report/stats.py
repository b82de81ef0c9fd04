"""Statistics for reports: small pure functions (REFERENCE.md §8, DESIGN.md "Identity and statistics").

Conventions:
- Rates carry Wilson intervals.
- Baseline vs with-skill on the same (case, run index) is paired: exact McNemar on the
  discordant pairs. ``b`` counts pairs where only the baseline passed, ``c`` pairs where
  only the with-skill arm passed.
- Bootstraps resample CASES (not trials), since trials of one case are correlated.
  Percentile intervals, numpy Generator seeded for reproducibility.
- ``None`` means "not measured" (e.g. a geometric mean of no values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

__all__ = [
    "bootstrap_geomean",
    "discordant_counts",
    "fast_p",
    "FAST_P_THRESHOLDS",
    "geomean",
    "mcnemar_exact",
    "paired_bootstrap_lift",
    "pass_at_k",
    "token_savings",
    "upskill_beneficial",
    "verdict_words",
    "VerdictWords",
    "wilson_interval",
    "MIN_DISCORDANT",
    "ALPHA",
]

#: Below this many discordant pairs exact McNemar cannot reach p < 0.05 (5 one-sided pairs give
#: p = 0.0625), so the verdict is "not enough runs" rather than "no measurable effect".
MIN_DISCORDANT = 6
ALPHA = 0.05
FAST_P_THRESHOLDS = (1.0, 1.5, 2.0)

VerdictWords = Literal["helps", "hurts", "no measurable effect", "not enough runs"]

# A case's outcomes in one arm: one number (a score or a 0/1) or the list of its trials' values.
CaseValues = float | int | bool | Sequence[float]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n; (0, 1) when nothing was observed."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest  # why: scipy.stats takes ~1 s to import; keep the CLI start fast

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of b against b + c at 1/2."""
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got b={b!r}, c={c!r}")
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(b, b + c, 0.5).pvalue)


def discordant_counts(pairs: Iterable[tuple[bool, bool]]) -> tuple[int, int]:
    """(b, c) from (baseline_passed, with_skill_passed) pairs: b = only baseline, c = only with-skill."""
    b = c = 0
    for base, with_ in pairs:
        if base and not with_:
            b += 1
        elif with_ and not base:
            c += 1
    return b, c


def verdict_words(b: int, c: int, p: float | None = None) -> VerdictWords:
    """Plain-words verdict from exact McNemar at 0.05."""
    if b + c < MIN_DISCORDANT:
        return "not enough runs"
    if p is None:
        p = mcnemar_exact(b, c)
    if p < ALPHA:
        return "helps" if c > b else "hurts"
    return "no measurable effect"


def _as_counts(values: CaseValues) -> tuple[float, int]:
    """(sum, count) of one case's values in one arm."""
    if np.ndim(values) == 0:
        return float(values), 1
    arr = [float(v) for v in values]
    return float(sum(arr)), len(arr)


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(samples, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def _case_weights(n_cases: int, n_boot: int, seed: int) -> np.ndarray:
    """How many times each case is drawn in each bootstrap resample, shape (n_boot, n_cases)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_cases, np.full(n_cases, 1.0 / n_cases), size=n_boot)


def paired_bootstrap_lift(
    pairs: Sequence[tuple[CaseValues, CaseValues]],
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Lift = rate(with-skill) - rate(baseline), with a bootstrap interval that resamples cases.

    Each element of ``pairs`` is one case: (baseline, with_skill), each a single value
    (e.g. the case's pass rate) or the list of that case's trial outcomes (0/1). Rates pool
    the trials of the drawn cases, so the point estimate equals the pass-rate difference
    the report shows. A resample where an arm drew no trials is dropped.
    """
    if not pairs:
        return (math.nan, math.nan, math.nan)
    counts = np.array([(*_as_counts(b), *_as_counts(w)) for b, w in pairs], dtype=float)
    sb, nb, sw, nw = counts.T
    if nb.sum() == 0 or nw.sum() == 0:
        return (math.nan, math.nan, math.nan)
    lift = sw.sum() / nw.sum() - sb.sum() / nb.sum()
    weights = _case_weights(len(pairs), n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (weights @ sw) / (weights @ nw) - (weights @ sb) / (weights @ nb)
    lo, hi = _percentile_interval(boot, confidence)
    return (float(lift), lo, hi)


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of positive values; None for no values."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return None
    if np.any(~np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("geomean: values must be finite and > 0")
    return float(np.exp(np.mean(np.log(arr))))


def bootstrap_geomean(
    values: Sequence[float] | Sequence[Sequence[float]],
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float] | None:
    """Geometric mean with a bootstrap interval; None for no values.

    ``values`` is either flat (each value its own case) or grouped per case (a list of
    lists): groups are resampled whole, as DESIGN asks, and pooled within a resample.
    """
    groups = [[float(g)] if np.ndim(g) == 0 else [float(v) for v in g] for g in values]
    groups = [g for g in groups if g]
    if not groups:
        return None
    flat = [v for g in groups for v in g]
    g = geomean(flat)
    assert g is not None
    sum_log = np.array([np.log(np.asarray(grp)).sum() for grp in groups])
    count = np.array([len(grp) for grp in groups], dtype=float)
    weights = _case_weights(len(groups), n_boot, seed)
    boot = np.exp((weights @ sum_log) / (weights @ count))
    lo, hi = _percentile_interval(boot, confidence)
    return (g, lo, hi)


def fast_p(results: Iterable[tuple[bool, float | None]], p: float) -> float | None:
    """KernelBench fast_p: fraction of ALL trials that are correct and have speedup > p.

    ``results`` holds (correct, speedup) per trial, speedup None when not measured
    (counts as not fast). None when there are no trials.
    """
    rows = list(results)
    if not rows:
        return None
    hits = sum(1 for correct, speedup in rows if correct and speedup is not None and speedup > p)
    return hits / len(rows)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) for c correct of n samples."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def token_savings(tokens_with: float, tokens_baseline: float) -> float | None:
    """upskill's token_savings = 1 - with / baseline; None when the baseline used no tokens."""
    if not tokens_baseline:
        return None
    return 1.0 - tokens_with / tokens_baseline


def upskill_beneficial(lift: float, token_savings: float | None) -> bool:
    """upskill's rule: lift > 0.05, or lift >= 0 and token savings > 0.2."""
    if lift is None or math.isnan(lift):
        return False
    savings = token_savings if token_savings is not None else 0.0
    return lift > 0.05 or (lift >= 0 and savings > 0.2)
