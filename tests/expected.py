"""EXPECTED.txt of a known-bad or cheat project under kernels_reference/: an optional
`check: NAME` line (the check that must fail), optional `needs: WHAT` lines (e.g.
`needs: cuda-torch`), then the substring that check's reason must hold."""

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


def read_expected(project: Path) -> Expected:
    check, needs, text = None, set(), []
    lines = [ln.strip() for ln in (project / "EXPECTED.txt").read_text().splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("check:"):
            check = line.removeprefix("check:").strip()
        elif line.startswith("needs:"):
            needs.add(line.removeprefix("needs:").strip())
        else:
            text.append(line)
    return Expected(check=check, reason=" ".join(text), needs=frozenset(needs), lines=len(lines))
