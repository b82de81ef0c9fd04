"""upskill's text assertions: substring presence (`contains`) and absence (`not_contains`).

Matching ignores case, as upskill's own grader does (it lower-cases both sides), so a
case file grades the same answer the same way in both tools.
"""

from __future__ import annotations

from harness.checks.base import CheckContext
from harness.common.results import CheckResult, Finding


def marker_findings(text: str, contains: list[str], not_contains: list[str]) -> list[Finding]:
    """One finding per assertion: error when it does not hold, note when it does."""
    findings: list[Finding] = []
    folded = text.casefold()
    for item in contains:
        ok = item.casefold() in folded
        findings.append(Finding(severity="note" if ok else "error", key=f"contains {item!r}",
                                reason="present" if ok else "not found in the answer"))
    for item in not_contains:
        ok = item.casefold() not in folded
        findings.append(Finding(severity="note" if ok else "error", key=f"not_contains {item!r}",
                                reason="absent" if ok else "found in the answer"))
    return findings


def check_markers(ctx: CheckContext) -> CheckResult:
    if ctx.case is None:
        return CheckResult.skip("markers", "no case")
    exp = ctx.case.expected
    findings = marker_findings(ctx.text, exp.contains, exp.not_contains)
    passed = sum(1 for f in findings if f.severity == "note")
    return CheckResult.from_findings(
        "markers", findings, ok_reason=f"{passed}/{len(findings)} markers",
        metrics={"assertions_passed": passed, "assertions_total": len(findings)},
    )
