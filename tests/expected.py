"""EXPECTED.txt of a known-bad, cheat or compat fixture project: an optional `check: NAME`
line (the check the file is about: for bad and cheat projects the one that must fail), an
optional `status: pass|skip|fail` line (the status that check must have; bad and cheat
projects leave it out), optional `needs: WHAT` lines (e.g. `needs: cuda-torch`), then the
substring that check's reason must hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Expected:
    check: str | None
    reason: str
    needs: frozenset[str]
    lines: int
    """Non-empty lines in the file, for tests that hold a project to a stricter format."""
    status: str | None = None
    """pass | skip | fail when the file says; None for the bad and cheat projects (they fail)."""


def read_expected(project: Path) -> Expected:
    check, status, needs, text = None, None, set(), []
    lines = [ln.strip() for ln in (project / "EXPECTED.txt").read_text().splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("check:"):
            check = line.removeprefix("check:").strip()
        elif line.startswith("status:"):
            status = line.removeprefix("status:").strip()
            if status not in ("pass", "skip", "fail"):
                raise ValueError(f"{project / 'EXPECTED.txt'}: status {status!r}: choose pass, skip or fail")
        elif line.startswith("needs:"):
            needs.add(line.removeprefix("needs:").strip())
        else:
            text.append(line)
    return Expected(check=check, reason=" ".join(text), needs=frozenset(needs), lines=len(lines), status=status)
