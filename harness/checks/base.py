"""What every check receives, and the check function type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.inputs.cases import Case
from harness.common.results import CheckResult, Device, Level


@dataclass
class GradeOptions:
    """Knobs that the CLI passes down to checks. Defaults are what `eval` uses."""

    sandbox: str = "auto"
    """Sandbox backend for untrusted work: auto | local | bwrap | container."""
    compile_timeout_s: float = 600.0
    run_timeout_s: float = 300.0
    reference: Path | None = None
    """Explicit reference.py for `check --level run` (--reference / --op)."""
    timed_iters: int | None = None
    """Override the runner's timed iterations (tests use few)."""
    timing_rounds: int | None = None
    """Override the device's number of alternating timing rounds."""
    op: str | None = None
    """The reference op for a bare project (`check --op`), when no case names one."""
    seed: int | None = None
    """A fixed base seed to replay a failure; None draws a fresh secret one."""
    baseline: str | None = None
    """eager | compile: what the speedup is measured against (`check --baseline`); None: the
    case's own (`kernel.baseline`), else eager."""


@dataclass
class CheckContext:
    """Everything a check may look at. Checks must not mutate it, except `state`."""

    case: Case | None
    """None for `kernelgrade check PROJECT_DIR` on a bare project."""
    text: str
    """The model's whole answer ('' for a bare project)."""
    project_dir: Path | None
    """The extracted (or given) kernel-builder project; None when there is none."""
    level: Level
    device: Device
    artifacts: Path
    """A folder for this trial's logs and build outputs."""
    options: GradeOptions = field(default_factory=GradeOptions)
    prior: dict[str, CheckResult] = field(default_factory=dict)
    """Results of the checks that ran before this one."""
    state: dict[str, object] = field(default_factory=dict)
    """Hand-over between checks of one trial (e.g. compile -> sass: the cubin paths)."""


CheckFn = Callable[[CheckContext], CheckResult]
