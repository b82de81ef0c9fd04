"""The one check table: each check's name, function, lowest level and dependencies.

Every list of checks in kernelgrade (the order checks run in, the level each needs, what blocks
what, what `check` runs on a project) is read from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.common.results import CheckName, Level


@dataclass(frozen=True)
class CheckSpec:
    name: CheckName
    function: str
    """"module:function", imported only when the check runs (so `--help` does not load torch)."""
    level: Level
    """The lowest level at which the check can run; build_toml and scan are static, so text."""
    depends: tuple[CheckName, ...] = ()
    """It runs only if these passed; otherwise `skip (blocked by X)`."""
    text_only: bool = False
    """About the answer's prose, not the project: `check PROJECT` leaves it out."""


CHECK_TABLE: tuple[CheckSpec, ...] = (
    CheckSpec("markers", "harness.checks.markers:check_markers", "text", text_only=True),
    CheckSpec("build_toml", "harness.checks.build_toml:check_build_toml", "text"),
    # scan: every case that runs a project also scans it, and a plain trick blocks the run.
    CheckSpec("scan", "harness.checks.scan:check_scan", "text"),
    CheckSpec("compile", "harness.checks.compile:check_compile", "compile", ("build_toml",)),
    CheckSpec("sass", "harness.checks.sass:check_sass", "compile", ("compile",)),
    CheckSpec("run", "harness.checks.run:check_run", "run", ("compile", "scan")),
    CheckSpec("speedup", "harness.checks.speedup:check_speedup", "run", ("run",)),
)

#: Checks in the order they run; later ones may be blocked by earlier failures.
CHECK_ORDER: tuple[CheckName, ...] = tuple(s.name for s in CHECK_TABLE)
CHECK_LEVEL: dict[str, Level] = {s.name: s.level for s in CHECK_TABLE}
DEPENDS: dict[str, tuple[CheckName, ...]] = {s.name: s.depends for s in CHECK_TABLE if s.depends}
#: What `kernelgrade check PROJECT` runs: every check about the project itself.
PROJECT_CHECKS: tuple[CheckName, ...] = tuple(s.name for s in CHECK_TABLE if not s.text_only)
LEVEL_RANK: dict[str, int] = {"text": 0, "compile": 1, "run": 2}

__all__ = ["CHECK_LEVEL", "CHECK_ORDER", "CHECK_TABLE", "DEPENDS", "LEVEL_RANK", "PROJECT_CHECKS", "CheckSpec"]
