"""Verdicts from check results: pure functions (DESIGN.md "Checks and verdicts").

pass only when every required check within the level passed; a skipped check
is never a pass; a trial whose required checks were all skipped is incomplete.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from harness.common.results import CheckResult, Level
from harness.common.check_table import CHECK_LEVEL, LEVEL_RANK

Verdict = Literal["pass", "fail", "error", "incomplete"]


class Score(BaseModel):
    verdict: Verdict
    reason: str
    assertions_passed: int
    assertions_total: int
    """Counts only assertions within the level (skips above it count neither way)."""
    skipped: list[str]
    """'name: reason' for every required check that was skipped."""


def in_level(check: str, level: Level) -> bool:
    return LEVEL_RANK[CHECK_LEVEL[check]] <= LEVEL_RANK[level]


def score(results: list[CheckResult], required: list[str], level: Level) -> Score:
    by_name = {r.name: r for r in results}
    passed = total = 0
    skipped: list[str] = []
    statuses: list[str] = []
    fail_reason = error_reason = ""
    for name in required:
        result = by_name.get(name)
        if result is None:
            result = CheckResult.skip(name, "not run")
        if result.status == "skip":
            skipped.append(f"{name}: {result.reason}")
            if not in_level(name, level):
                continue  # above the level: counts neither way
        statuses.append(result.status)
        if name == "markers":
            m_passed = int(result.metrics.get("assertions_passed") or 0)
            m_total = int(result.metrics.get("assertions_total") or 0)
            if result.status in ("pass", "fail"):
                passed, total = passed + m_passed, total + m_total
        elif result.status != "skip" or in_level(name, level):
            total += 1
            passed += result.status == "pass"
        if result.status == "fail" and not fail_reason:
            fail_reason = f"{name}: {result.reason}"
        if result.status == "error" and not error_reason:
            error_reason = f"{name}: {result.reason}"
    if not statuses or all(s == "skip" for s in statuses):
        verdict: Verdict = "incomplete"
        reason = "every required check was skipped" if required else "the case requires no check"
    elif fail_reason:
        verdict, reason = "fail", fail_reason
    elif error_reason:
        verdict, reason = "error", error_reason
    elif "skip" in statuses:
        verdict, reason = "incomplete", "some required checks were skipped"
    else:
        verdict, reason = "pass", "every required check passed"
    return Score(verdict=verdict, reason=reason, assertions_passed=passed,
                 assertions_total=total, skipped=skipped)
