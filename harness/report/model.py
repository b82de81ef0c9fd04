"""The report's own data model: plain data, filled from the store (or anything else).

The report layer depends only on these models, not on the store's tables, so the store
can change without touching the renderers. `attach_artifacts` reads the files a trial
left on disk (extracted project, logs) for the HTML detail view.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from harness.agent.trajectory import TrajectoryStats
from harness.common.results import CheckResult, Device, Finding, Level

log = logging.getLogger(__name__)

Arm = Literal["baseline", "with_skill"]
TrialVerdict = Literal["pass", "fail", "error", "incomplete"]
ARMS: tuple[Arm, ...] = ("baseline", "with_skill")

UPSKILL_CASE = "upskill-run"
"""The pseudo-case of a run imported from upskill's logs: every case of one upskill run, as one unit."""

#: Bounds on what the HTML embeds per file, so one huge answer cannot bloat the page.
MAX_FILE_CHARS = 60_000
MAX_FILES = 40


class ReportFile(BaseModel):
    """One file extracted from an answer."""

    path: str
    """Relative path inside the extracted project."""
    size: int
    """Size in bytes on disk."""
    text: str | None = None
    """Content (possibly truncated); None for binary or unread files."""
    truncated: bool = False


class ReportTrial(BaseModel):
    """One graded trial: (case, model, arm, run index)."""

    run_id: str
    case_id: str
    model: str
    arm: Arm
    run_index: int
    verdict: TrialVerdict
    verdict_reason: str = ""
    """One line: why the verdict (first failing check, error text...)."""
    assertions_passed: int = 0
    assertions_total: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens read from the provider's prompt cache (within input_tokens)."""
    cache_write_tokens: int = 0
    """Input tokens written to the prompt cache (within input_tokens; Anthropic reports them)."""
    cost_usd: float | None = None
    """None when no price is known for the model."""
    latency_s: float | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    device: Device | None = None
    """Device the run/speedup checks used; CPU figures are labelled CPU."""
    prompt: str = ""
    answer: str = ""
    error: str | None = None
    """Model-call or harness error text when verdict is error."""
    extraction: list[Finding] = Field(default_factory=list)
    """Findings from extracting files out of the answer."""
    artifacts: list[str] = Field(default_factory=list)
    """Artifact paths (relative to the data dir) kept for this trial."""
    artifacts_dir: str | None = None
    """The trial's artifact folder (relative to the data dir), where the project was extracted."""
    files: list[ReportFile] = Field(default_factory=list)
    """Extracted files, filled by attach_artifacts (or by the caller)."""
    logs: dict[str, str] = Field(default_factory=dict)
    """Check name -> log text (e.g. compile output), filled by attach_artifacts."""
    sass_histogram: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Kernel name -> {SASS opcode: count}; empty when no SASS was inspected."""
    agent: TrajectoryStats | None = None
    """Agent mode: the trajectory (turns, tool calls, skill reads, pass@turn); None one-shot."""

    @property
    def key(self) -> str:
        """A stable id usable in HTML anchors and JUnit names."""
        return f"{self.model}|{self.arm}|{self.case_id}|{self.run_index}"

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ReportRun(BaseModel):
    """One stored run, as the report sees it."""

    run_id: str
    created: datetime | None = None
    skill_name: str | None = None
    skill_sha256: str | None = None
    skill_tokens: int | None = None
    """Size of the skill block (SKILL.md + references/) in tokens."""
    level: Level | None = None
    device: Device | None = None
    env: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    """Provenance: kernelgrade version, git sha, Python, torch, CUDA, GPU/CPU model, ..."""
    notes: list[str] = Field(default_factory=list)
    """Shown under the title, e.g. 'single-turn evaluation'."""
    mode: Literal["one-shot", "agent"] = "one-shot"
    """How the trials were run; results of different modes are never pooled or compared."""
    skill_delivery: str | None = None
    """Agent mode: inline or on-demand."""
    max_turns: int | None = None
    """Agent mode: the run's --max-turns (a case may set its own)."""
    source: str = "kernelgrade"
    """Who made the trials: kernelgrade, or "upskill" for a run imported from upskill's logs, whose
    trials are whole upskill runs (every case of one run as one unit)."""
    trials: list[ReportTrial] = Field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(t.model for t in self.trials))

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(t.case_id for t in self.trials))

    @property
    def arms(self) -> list[Arm]:
        present = {t.arm for t in self.trials}
        return [a for a in ARMS if a in present]


class LinkedRunView(BaseModel):
    """One eval run a generate run made; its trials are in that run (kernelgrade runs show RUN_ID)."""

    phase: str
    """train-N (refinement: picks the skill) or holdout (the verdict)."""
    run_id: str
    status: str
    """running | finished | interrupted, or "missing" when the run is not in this store."""
    trials: int = 0
    errors: int = 0
    passed: dict[str, int] = Field(default_factory=dict)
    """Arm -> trials graded pass."""
    graded: dict[str, int] = Field(default_factory=dict)
    """Arm -> trials graded pass or fail (the pass rate's denominator)."""


class TeacherCallView(BaseModel):
    """One stored teacher call of a generate run."""

    step: str
    attempt: int
    status: str
    """pending | answered | ok | invalid | error"""
    problem: str | None = None
    """Why the answer was refused, or the call's error."""
    output_tokens: int | None = None


class GenerateRunView(BaseModel):
    """A generate run as `runs show` presents it: it holds no trials of its own."""

    run_id: str
    created: datetime | None = None
    status: str
    task: str
    teacher: str
    students: list[str]
    name: str | None = None
    """The skill's name."""
    source: str = "none"
    """What --from gave: none | skill | trace."""
    train_cases: list[str] = Field(default_factory=list)
    holdout_cases: list[str] = Field(default_factory=list)
    skill_path: str | None = None
    cases_path: str | None = None
    """Where the skill and cases were written; None until the run wrote them."""
    teacher_calls: list[TeacherCallView] = Field(default_factory=list)
    eval_runs: list[LinkedRunView] = Field(default_factory=list)


def _read_text(path: Path) -> tuple[str | None, bool]:
    data = path.read_bytes()
    if b"\0" in data[:4096]:
        return None, False
    text = data.decode("utf-8", errors="replace")
    if len(text) > MAX_FILE_CHARS:
        return text[:MAX_FILE_CHARS], True
    return text, False


def sass_histogram_from_json(path: Path) -> dict[str, dict[str, int]]:
    """Kernel -> opcode counts from the sass check's histogram.json ({"kernels": {name: {"histogram": ...}}})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        kernels = data.get("kernels") or {}
        return {str(name): {str(op): int(n) for op, n in (info.get("histogram") or {}).items()}
                for name, info in kernels.items()}
    except (OSError, ValueError, AttributeError, TypeError) as err:
        log.debug("unreadable SASS histogram %s: %s", path, err)
        return {}


def attach_artifacts(run: ReportRun, data_root: Path) -> ReportRun:
    """A copy of `run` whose trials carry their extracted files and check logs read from disk.

    Paths in the run are relative to `data_root`; anything missing is left out (with a
    debug log), never an error: the report must render for partial runs.
    """
    root = data_root.resolve()
    trials: list[ReportTrial] = []
    for trial in run.trials:
        files = list(trial.files)
        logs = dict(trial.logs)
        if not files and trial.artifacts_dir:
            project = (root / trial.artifacts_dir / "project").resolve()
            if project.is_dir() and project.is_relative_to(root):
                for path in sorted(p for p in project.rglob("*") if p.is_file())[:MAX_FILES]:
                    text, cut = _read_text(path)
                    files.append(ReportFile(path=str(path.relative_to(project)),
                                            size=path.stat().st_size, text=text, truncated=cut))
        sass = dict(trial.sass_histogram)
        for check in trial.checks:
            if check.name in logs or not check.log_path:
                continue
            path = (root / check.log_path).resolve()
            if not (path.is_file() and path.is_relative_to(root)):
                log.debug("log %s of %s not found", check.log_path, trial.key)
                continue
            if check.name == "sass" and path.suffix == ".json":
                sass = sass or sass_histogram_from_json(path)
                continue
            text, cut = _read_text(path)
            if text is not None:
                logs[check.name] = text + ("\n[... truncated]" if cut else "")
        trials.append(trial.model_copy(update={"files": files, "logs": logs, "sass_histogram": sass}))
    return run.model_copy(update={"trials": trials})
