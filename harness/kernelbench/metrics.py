"""KernelBench's scores as pure functions over kernelgrade's trial results.

KernelBench (src/kernelbench/score.py) defines, over n samples:
  fast_p  = #(correct and speedup > p) / n        fast_0 is the correct rate
  geomean = geometric mean of speedup over the correct samples
with speedup = eager PyTorch time / candidate time, both measured on the same inputs.

Here "correct" is kernelgrade's `run` check passing (correct on secret-seeded inputs and
no anti-cheat finding), which is stricter than KernelBench's allclose on a few fixed seeds,
and speedup is the `speedup` check's median ratio against the reference (eager PyTorch,
timed in its own process with the same flush and inputs). A correct trial whose timing did
not run counts for fast_0 (any measured speedup is > 0) and for no p > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

#: Speedup errors that still leave a trustworthy measurement (the kernel is just slow).
TIMED_BUT_FAILED = ("slow",)


@dataclass(frozen=True)
class TrialScore:
    """One graded trial as KernelBench's scores see it."""

    correct: bool
    speedup: float | None = None
    """Reference time / candidate time; None when not timed."""


def fast_p(trials: Sequence[TrialScore], p: float) -> float | None:
    """KernelBench's fast_p: the share of all trials that are correct and faster than p times
    the reference (strictly). None for no trials."""
    if not trials:
        return None
    if p <= 0:
        hits = sum(t.correct for t in trials)
    else:
        hits = sum(t.correct and t.speedup is not None and t.speedup > p for t in trials)
    return hits / len(trials)


def fast_scores(trials: Sequence[TrialScore], ps: Iterable[float] = (0.0, 1.0, 2.0)) -> dict[str, float | None]:
    """{"fast_0": ..., "fast_1": ..., "fast_2": ...} (keys use %g of p: fast_1.5)."""
    return {f"fast_{p:g}": fast_p(trials, p) for p in ps}


def geomean_speedup(trials: Sequence[TrialScore]) -> tuple[float | None, int]:
    """(geometric mean speedup over correct, timed trials, how many there were)."""
    values = [t.speedup for t in trials if t.correct and t.speedup is not None and t.speedup > 0]
    if not values:
        return None, 0
    return math.exp(sum(math.log(v) for v in values) / len(values)), len(values)


def score_from_checks(results: Mapping[str, object]) -> TrialScore:
    """A TrialScore from one trial's check results by name (objects with `status`,
    `metrics` and `findings`, as harness.common.results.CheckResult has)."""
    run = results.get("run")
    correct = getattr(run, "status", None) == "pass"
    timing = results.get("speedup")
    speedup = None
    if timing is not None:
        metrics = getattr(timing, "metrics", {}) or {}
        errors = [f.key for f in getattr(timing, "findings", []) if getattr(f, "severity", "") == "error"]
        value = metrics.get("speedup")
        passed = getattr(timing, "status", None) == "pass"
        if isinstance(value, (int, float)) and (passed or set(errors) <= set(TIMED_BUT_FAILED)):
            speedup = float(value)
    return TrialScore(correct=correct, speedup=speedup)


__all__ = ["TrialScore", "fast_p", "fast_scores", "geomean_speedup", "score_from_checks"]
