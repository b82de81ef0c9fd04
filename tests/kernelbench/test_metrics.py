"""fast_p and the geometric-mean speedup, as KernelBench defines them (src/kernelbench/score.py)."""

from __future__ import annotations

import math

from harness.common.results import CheckResult, Finding
from harness.kernelbench.metrics import TrialScore, fast_p, fast_scores, geomean_speedup, score_from_checks

TRIALS = [TrialScore(True, 3.0), TrialScore(True, 1.5), TrialScore(True, 0.5), TrialScore(True, None),
          TrialScore(False, 4.0), TrialScore(False, None)]


def test_fast_p_counts_correct_and_faster_over_all_trials() -> None:
    assert fast_p(TRIALS, 0) == 4 / 6  # fast_0 is the correct rate, timed or not
    assert fast_p(TRIALS, 1) == 2 / 6  # a wrong answer's speedup never counts
    assert fast_p(TRIALS, 2) == 1 / 6
    assert fast_p(TRIALS, 3.0) == 0  # strictly faster, as KernelBench's `speedup > p`
    assert fast_p([], 1) is None
    assert fast_scores(TRIALS) == {"fast_0": 4 / 6, "fast_1": 2 / 6, "fast_2": 1 / 6}
    assert list(fast_scores(TRIALS, (1.5,))) == ["fast_1.5"]


def test_geomean_over_correct_timed_trials() -> None:
    value, n = geomean_speedup(TRIALS)
    assert n == 3 and math.isclose(value, (3.0 * 1.5 * 0.5) ** (1 / 3))
    assert geomean_speedup([TrialScore(False, 2.0)]) == (None, 0)


def test_score_from_check_results() -> None:
    run = CheckResult(name="run", status="pass", reason="ok")
    timed = CheckResult(name="speedup", status="pass", reason="ok", metrics={"speedup": 1.7})
    slow = CheckResult.from_findings("speedup", [Finding(severity="error", key="slow", reason="below")],
                                     metrics={"speedup": 0.8})
    physics = CheckResult.from_findings("speedup", [Finding(severity="error", key="physics", reason="too fast")],
                                        metrics={"speedup": 90.0})
    assert score_from_checks({"run": run, "speedup": timed}) == TrialScore(True, 1.7)
    assert score_from_checks({"run": run, "speedup": slow}) == TrialScore(True, 0.8)  # slow is still a timing
    assert score_from_checks({"run": run, "speedup": physics}) == TrialScore(True, None)  # a timing not believed
    assert score_from_checks({"run": CheckResult(name="run", status="fail", reason="x")}) == TrialScore(False, None)
