"""What run_checks tells the model: each check's verdict and reason, the first errors
with file:line, the largest error for correctness, the speedup. Compact, because every
character goes back into the context of every later turn."""

from __future__ import annotations

from typing import get_args

from harness.agent.tools import CheckLevel
from harness.common.results import CheckResult

MAX_FINDINGS = 6
MAX_CHARS = 4000
_LEVELS: tuple[str, ...] = get_args(CheckLevel)
"""text < compile < run: the tool contract's own order (the same as the eval's levels)."""


def cap_level(asked: CheckLevel | None, eval_level: CheckLevel) -> CheckLevel:
    """The level run_checks runs at: what the model asked for, never above the eval's."""
    if asked is None or _LEVELS.index(asked) > _LEVELS.index(eval_level):
        return eval_level
    return asked


def _metrics(result: CheckResult) -> str:
    m = result.metrics
    shown = []
    if result.name == "run" and m.get("max_abs_err") is not None:
        shown.append(f"max abs error {m['max_abs_err']:.3g}")
    if result.name == "speedup" and isinstance(m.get("speedup"), (int, float)):
        shown.append(f"speedup {m['speedup']:.2f}x")
    return f" [{', '.join(shown)}]" if shown else ""


def format_checks(results: list[CheckResult], *, verdict: str, level: CheckLevel, device: str,
                  note: str = "") -> str:
    """One line per check, then its first error findings indented under it."""
    # The device matters only where code runs; at text or compile level naming it would mislead.
    where = f" on {device}" if level == "run" else ""
    lines = [f"checks at level {level}{where}: {verdict.upper()}" + (f" ({note})" if note else "")]
    for r in results:
        reason = f": {r.reason}" if r.reason else ""
        lines.append(f"- {r.name}: {r.status}{reason}{_metrics(r)}")
        # A finding the reason line already says is not repeated: every character is paid for.
        said = r.reason.removesuffix(")").rsplit(" (+", 1)[0] if r.reason.endswith(" more)") else r.reason
        errors = [f for f in r.findings if f.severity == "error" and f"{f.key}: {f.reason}" != said
                  and f.reason != said]
        for f in errors[:MAX_FINDINGS]:
            lines.append(f"    {f.key}: {f.reason}")
        if len(errors) > MAX_FINDINGS:
            lines.append(f"    (+{len(errors) - MAX_FINDINGS} more errors)")
    text = "\n".join(lines)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + "\n[... cut]"
    return text


__all__ = ["cap_level", "format_checks"]
