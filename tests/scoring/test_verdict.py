"""scoring.verdict.score: every branch of the verdict, with the precedence DESIGN.md gives
("Checks and verdicts": fail before error, error before incomplete, skips above the level
count neither way)."""

from __future__ import annotations

from harness.common.results import CheckResult
from harness.scoring.verdict import score


def _r(name: str, status: str, reason: str = "", **metrics) -> CheckResult:
    return CheckResult(name=name, status=status, reason=reason or f"{name} {status}", metrics=metrics)


def test_every_required_check_passed() -> None:
    s = score([_r("build_toml", "pass"), _r("compile", "pass")], ["build_toml", "compile"], "compile")
    assert (s.verdict, s.assertions_passed, s.assertions_total, s.skipped) == ("pass", 2, 2, [])


def test_fail_wins_over_error_and_names_the_first_failure() -> None:
    results = [_r("build_toml", "error", "parser crashed"), _r("compile", "fail", "nvcc: x.cu:3: error"),
               _r("sass", "fail", "empty kernel")]
    s = score(results, ["build_toml", "compile", "sass"], "compile")
    assert s.verdict == "fail" and s.reason == "compile: nvcc: x.cu:3: error"
    assert (s.assertions_passed, s.assertions_total) == (0, 3)


def test_error_wins_over_skip_and_pass() -> None:
    results = [_r("build_toml", "pass"), _r("compile", "error", "nvcc killed by signal 9"),
               _r("sass", "skip", "blocked by compile")]
    s = score(results, ["build_toml", "compile", "sass"], "compile")
    assert s.verdict == "error" and s.reason == "compile: nvcc killed by signal 9"
    assert s.skipped == ["sass: blocked by compile"]


def test_a_skip_within_the_level_makes_the_trial_incomplete_and_counts_as_an_assertion() -> None:
    results = [_r("build_toml", "pass"), _r("compile", "skip", "nvcc not found")]
    s = score(results, ["build_toml", "compile"], "compile")
    assert s.verdict == "incomplete" and s.reason == "some required checks were skipped"
    assert (s.assertions_passed, s.assertions_total) == (1, 2)


def test_skips_above_the_level_count_neither_way() -> None:
    results = [_r("build_toml", "pass"), _r("run", "skip", "level compile")]
    s = score(results, ["build_toml", "run"], "compile")
    assert s.verdict == "pass" and (s.assertions_passed, s.assertions_total) == (1, 1)
    assert s.skipped == ["run: level compile"]


def test_all_required_skipped_is_incomplete() -> None:
    s = score([_r("run", "skip", "no CUDA device")], ["run"], "run")
    assert s.verdict == "incomplete" and s.reason == "every required check was skipped"
    assert s.assertions_total == 1 and s.assertions_passed == 0


def test_a_required_check_that_never_ran_is_a_skip_not_a_pass() -> None:
    s = score([_r("build_toml", "pass")], ["build_toml", "compile"], "compile")
    assert s.verdict == "incomplete" and s.skipped == ["compile: not run"]


def test_no_required_check_is_incomplete() -> None:
    s = score([], [], "text")
    assert s.verdict == "incomplete" and s.reason == "the case requires no check"


def test_markers_count_each_assertion() -> None:
    markers = _r("markers", "fail", "missing 'wgmma'", assertions_passed=2, assertions_total=3)
    s = score([markers, _r("build_toml", "pass")], ["markers", "build_toml"], "text")
    assert s.verdict == "fail" and (s.assertions_passed, s.assertions_total) == (3, 4)
