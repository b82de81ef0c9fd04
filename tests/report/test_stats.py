"""harness/report/stats.py against values computed independently (textbook / hand-computed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report import stats


def _wilson_by_hand(k: int, n: int, z: float) -> tuple[float, float]:
    # Wilson score interval written out from the textbook formula, not via scipy.
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_textbook_8_of_10():
    lo, hi = stats.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (3, 7), (17, 40)])
def test_wilson_matches_formula(k, n):
    expected = _wilson_by_hand(k, n, 1.959963984540054)
    got = stats.wilson_interval(k, n)
    assert got[0] == pytest.approx(max(0.0, expected[0]), abs=1e-9)
    assert got[1] == pytest.approx(min(1.0, expected[1]), abs=1e-9)


def test_wilson_zero_of_ten_upper_is_z2_over_n_plus_z2():
    # Closed form for k = 0: upper = z^2 / (n + z^2) = 3.8415 / 13.8415.
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)


def test_wilson_other_confidence():
    expected = _wilson_by_hand(8, 10, 1.6448536269514722)
    assert stats.wilson_interval(8, 10, confidence=0.90) == pytest.approx(expected, abs=1e-9)


def test_wilson_empty_and_bad():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        stats.wilson_interval(5, 3)


@pytest.mark.parametrize(
    "b,c,p",
    [
        (1, 9, 22 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10 = 0.021484375
        (0, 6, 2 / 64),  # 0.03125: the fewest discordant pairs that can reach 0.05
        (0, 5, 2 / 32),  # 0.0625
        (2, 8, 2 * (1 + 10 + 45) / 1024),  # 0.109375
        (3, 3, 1.0),
        (0, 0, 1.0),
    ],
)
def test_mcnemar_exact(b, c, p):
    assert stats.mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)
    assert stats.mcnemar_exact(c, b) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize(
    "b,c,words",
    [
        (0, 6, "helps"),
        (6, 0, "hurts"),
        (1, 9, "helps"),
        (9, 1, "hurts"),
        (0, 5, "not enough runs"),
        (0, 0, "not enough runs"),
        (3, 3, "no measurable effect"),
        (2, 8, "no measurable effect"),
    ],
)
def test_verdict_words(b, c, words):
    assert stats.verdict_words(b, c) == words
    assert stats.verdict_words(b, c, stats.mcnemar_exact(b, c)) == words


def test_discordant_counts():
    pairs = [(True, True), (True, False), (False, True), (False, True), (False, False)]
    assert stats.discordant_counts(pairs) == (1, 2)


def test_pass_at_k():
    assert stats.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert stats.pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert stats.pass_at_k(4, 3, 2) == 1.0  # fewer than k failures: always a pass
    assert stats.pass_at_k(6, 0, 3) == 0.0
    with pytest.raises(ValueError):
        stats.pass_at_k(3, 4, 1)


def test_geomean():
    assert stats.geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert stats.geomean([1.0, 2.0, 4.0]) == pytest.approx(2.0)
    assert stats.geomean([0.5, 2.0]) == pytest.approx(1.0)
    assert stats.geomean([]) is None
    with pytest.raises(ValueError):
        stats.geomean([1.0, 0.0])


def test_fast_p():
    rows = [(True, 2.5), (True, 1.2), (False, 3.0), (True, None), (True, 0.9), (True, 1.0)]
    assert stats.fast_p(rows, 1.0) == pytest.approx(2 / 6)  # > p strictly: 1.0 does not count
    assert stats.fast_p(rows, 1.5) == pytest.approx(1 / 6)
    assert stats.fast_p(rows, 2.0) == pytest.approx(1 / 6)
    assert stats.fast_p([], 1.0) is None


def test_token_savings_and_upskill_rule():
    assert stats.token_savings(80, 100) == pytest.approx(0.2)
    assert stats.token_savings(150, 100) == pytest.approx(-0.5)
    assert stats.token_savings(10, 0) is None
    assert stats.upskill_beneficial(0.06, None) is True
    assert stats.upskill_beneficial(0.05, 0.0) is False
    assert stats.upskill_beneficial(0.0, 0.25) is True
    assert stats.upskill_beneficial(0.0, 0.2) is False
    assert stats.upskill_beneficial(-0.01, 0.9) is False


def test_paired_bootstrap_lift_point_estimate_pools_trials():
    pairs = [([0, 0], [1, 1]), ([1, 0], [1, 1]), ([1, 1], [1, 0]), ([0, 0], [0, 1])]
    lift, lo, hi = stats.paired_bootstrap_lift(pairs, n_boot=2000, seed=1)
    assert lift == pytest.approx(6 / 8 - 3 / 8)
    assert lo <= lift <= hi
    assert lo < hi
    # Same seed, same interval; another seed, another one.
    assert stats.paired_bootstrap_lift(pairs, n_boot=2000, seed=1) == (lift, lo, hi)


def test_paired_bootstrap_lift_degenerate():
    pairs = [(0.0, 1.0)] * 5
    assert stats.paired_bootstrap_lift(pairs, n_boot=500) == (1.0, 1.0, 1.0)
    assert all(math.isnan(x) for x in stats.paired_bootstrap_lift([]))


def test_paired_bootstrap_lift_width_matches_normal_theory():
    # With one value per case the lift is mean(d); its sampling sd is sd(d)/sqrt(m), so a 95%
    # bootstrap interval should span about 2 * 1.96 * sd / sqrt(m).
    rng = np.random.default_rng(123)
    m = 400
    base = rng.integers(0, 2, m).astype(float)
    with_ = np.where(rng.random(m) < 0.7, 1.0, base)
    d = with_ - base
    lift, lo, hi = stats.paired_bootstrap_lift(list(zip(base, with_)), n_boot=4000, seed=7)
    assert lift == pytest.approx(d.mean())
    expected_width = 2 * 1.959964 * d.std(ddof=0) / math.sqrt(m)
    assert hi - lo == pytest.approx(expected_width, rel=0.1)
    assert lo < lift < hi


def test_bootstrap_geomean():
    assert stats.bootstrap_geomean([]) is None
    assert stats.bootstrap_geomean([2.0, 2.0, 2.0], n_boot=200) == pytest.approx((2.0, 2.0, 2.0))
    g, lo, hi = stats.bootstrap_geomean([[1.0, 4.0], [2.0], [8.0, 0.5]], n_boot=1000)
    assert g == pytest.approx(stats.geomean([1.0, 4.0, 2.0, 8.0, 0.5]))
    assert lo <= g <= hi


def test_bootstrap_geomean_width_matches_lognormal_theory():
    rng = np.random.default_rng(5)
    logs = rng.normal(0.3, 0.5, 300)
    g, lo, hi = stats.bootstrap_geomean(list(np.exp(logs)), n_boot=4000, seed=3)
    assert g == pytest.approx(math.exp(logs.mean()))
    half = 1.959964 * logs.std(ddof=0) / math.sqrt(300)
    assert math.log(hi) - math.log(lo) == pytest.approx(2 * half, rel=0.1)
