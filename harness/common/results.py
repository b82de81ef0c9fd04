"""Result data shared by every check (DESIGN.md "Checks and verdicts").

A check returns a CheckResult; it never raises for an expected outcome
(an nvcc error, a mismatch, a missing marker are results).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["pass", "fail", "skip", "error"]
Severity = Literal["error", "warning", "note"]
CheckName = Literal["markers", "build_toml", "scan", "compile", "sass", "run", "speedup"]
Level = Literal["text", "compile", "run"]
Device = Literal["cuda", "cpu"]

class Finding(BaseModel):
    """One observation inside a check, e.g. a bad build.toml key."""

    severity: Severity
    """error fails the check; warning and note are shown only."""
    key: str
    """Where: a key path (`kernel.rmsnorm.cuda-capabilities`), a file:line, or a marker."""
    reason: str
    """One line a person can read."""


class CheckResult(BaseModel):
    """The outcome of one check on one artifact."""

    name: str
    """Check name, one of CHECK_ORDER."""
    status: Status
    reason: str = ""
    """One line: why it passed, failed or was skipped."""
    findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    """Numbers such as registers, smem, max_abs_err, speedup. None means not measured."""
    log_path: str | None = None
    """Full log (compile output, runner output), relative to the data dir when stored."""
    device: Device | None = None
    """cuda or cpu for run/speedup results, so CPU figures are never pooled with GPU ones."""

    @classmethod
    def from_findings(
        cls,
        name: str,
        findings: list[Finding],
        *,
        ok_reason: str = "ok",
        metrics: dict | None = None,
        log_path: str | None = None,
    ) -> "CheckResult":
        """Fail if any finding is an error; the reason is the first error's."""
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            first = errors[0]
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            reason = f"{first.key}: {first.reason}{more}"
            status: Status = "fail"
        else:
            reason, status = ok_reason, "pass"
        return cls(name=name, status=status, reason=reason, findings=findings,
                   metrics=metrics or {}, log_path=log_path)

    @classmethod
    def skip(cls, name: str, reason: str) -> "CheckResult":
        return cls(name=name, status="skip", reason=reason)

    @classmethod
    def error(cls, name: str, reason: str, **kw) -> "CheckResult":
        """A harness-side fault (not the candidate's): counted on its own, never as a fail."""
        return cls(name=name, status="error", reason=reason, **kw)
