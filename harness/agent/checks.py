"""The run_checks tool: the case's checks on a snapshot of the workspace, and the final grade.

Both go through harness.scoring.grade.grade_project, the grader of one-shot answers, on a
copy of the project (builds and the sandboxed run write into the copy, never into the
workspace the model keeps editing); compiles go through the content cache as always.

What the model is shown leaves the text assertions (`markers`) out: they are the grader's
hidden expectations, as in upskill, where the agent never sees `expected`. They are still
scored, silently, so each stored check result also says what the trial's verdict would
have been had it stopped there (the report's pass@turn).

A workspace whose content was already checked at the same level in this trajectory gets the
stored result again, said to be unchanged, without a new grading: a cache hit costs a hash
of the files, and the memo is rebuilt from the stored results on resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from harness.agent.conversation import Conversation, ToolResultStep
from harness.agent.feedback import cap_level, format_checks
from harness.agent.tools import CheckLevel
from harness.agent.workspace import Workspace, project_digest
from harness.checks.base import GradeOptions
from harness.common.results import CheckResult, Device
from harness.inputs.cases import Case
from harness.scoring.grade import Grade, grade_project
from harness.scoring.verdict import score

HIDDEN = ("markers",)
"""Checks scored but never shown to the model."""


class ChecksDetail(BaseModel):
    """What a run_checks result keeps for the harness (ToolResultStep.detail); never sent."""

    level: CheckLevel
    full_level: bool
    """True when it ran at the eval's own level: only those count for pass@turn."""
    digest: str
    """project_digest of the files checked."""
    shown_verdict: str
    """The verdict the model was told (hidden checks left out)."""
    verdict: str
    """The verdict with every required check, the hidden ones included."""
    results: list[CheckResult]
    folder: str | None = None
    """The snapshot's folder under the trial's artifacts (None for a reused result)."""
    reused: bool = False


def answer_text(case: Case, final: str, files: dict[str, bytes]) -> str:
    """What the text assertions read in agent mode.

    A text case: its `output_file` when it names one (upskill: "file to validate instead of
    agent output"), else the final message. A kernel case: the final message followed by
    every project file as a fenced block with its path, the same text a one-shot answer with
    that project would be, so markers such as "9.0" are found in build.toml."""
    output_file = getattr(case, "output_file", None)
    if case.kernel is None:
        if output_file:
            data = files.get(output_file)
            return data.decode("utf-8", errors="replace") if data is not None else ""
        return final
    blocks = [f"```{path.rsplit('.', 1)[-1] if '.' in path else 'text'} path={path}\n"
              f"{data.decode('utf-8', errors='replace')}\n```" for path, data in sorted(files.items())]
    return "\n\n".join([final, *blocks]) if final else "\n\n".join(blocks)


def has_workspace_checks(case: Case) -> bool:
    return any(c not in HIDDEN for c in case.required_checks)


def grade_workspace(case: Case, ws: Workspace, final: str, *, level: CheckLevel, device: Device,
                    options: GradeOptions, folder: Path) -> tuple[Grade, dict[str, bytes]]:
    """Grade the workspace as it stands (a snapshot at folder/project) with `final` as the
    final message. The final grade of a trajectory and every run_checks come through here."""
    files = ws.read_project()
    project = ws.snapshot(folder / "project", files) if files and case.kernel is not None else None
    grade = grade_project(case, answer_text(case, final, files), project, level=level, device=device,
                          artifacts=folder, options=options)
    return grade, files


class WorkspaceChecks:
    """The run_checks callable handed to harness.agent.dispatch.execute_call."""

    def __init__(self, case: Case, ws: Workspace, conversation: Conversation, *, level: CheckLevel,
                 device: Device, options: GradeOptions, folder: Path,
                 grade: Callable[..., tuple[Grade, dict[str, bytes]]] = grade_workspace) -> None:
        self.case, self.ws, self.conversation = case, ws, conversation
        self.level, self.device, self.options, self.folder = level, device, options, folder
        self._grade = grade
        """Swappable so the benchmark can stub the checks and time the harness alone."""
        self.memo: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for step in conversation.steps:
            if isinstance(step, ToolResultStep) and step.name == "run_checks" and step.detail:
                d = step.detail
                if "digest" in d and "level" in d:
                    self.memo[(d["digest"], d["level"])] = (step.content, d)

    def __call__(self, asked: CheckLevel | None) -> tuple[str, dict[str, Any]]:
        level = cap_level(asked, self.level)
        note = f"you asked for {asked}, the evaluation's level is {self.level}" if asked and asked != level else ""
        if not has_workspace_checks(self.case):
            out = getattr(self.case, "output_file", None)
            return ("nothing to check in the workspace: this task is graded on "
                    + (f"the file {out}" if out else "your final message"), {"level": level, "none": True})
        files = self.ws.read_project()
        digest = project_digest(files)
        seen = self.memo.get((digest, level))
        if seen is not None:
            content, detail = seen
            head = content.split("\n", 1)
            body = head[1] if len(head) > 1 else ""
            return (f"{head[0]} (workspace unchanged since the last check at this level: same result)"
                    + (f"\n{body}" if body else ""), detail | {"reused": True, "folder": None})
        n = sum(1 for s in self.conversation.steps if isinstance(s, ToolResultStep) and s.name == "run_checks")
        folder = self.folder / f"checks-{n + 1}"
        while folder.exists():  # a resumed trajectory re-running a call whose result was not stored
            n += 1
            folder = self.folder / f"checks-{n + 1}"
        grade, _ = self._grade(self.case, self.ws, self.conversation.final_text(), level=level, device=self.device,
                               options=self.options, folder=folder)
        shown = [r for r in grade.results if r.name not in HIDDEN]
        shown_score = score(shown, [c for c in grade.required if c not in HIDDEN], level)
        text = format_checks(shown, verdict=shown_score.verdict, level=level, device=self.device, note=note)
        detail = ChecksDetail(level=level, full_level=level == self.level, digest=digest,
                              shown_verdict=shown_score.verdict, verdict=grade.score.verdict,
                              results=grade.results, folder=str(folder)).model_dump(mode="json")
        self.memo[(digest, level)] = (text, detail)
        return text, detail


__all__ = ["HIDDEN", "ChecksDetail", "WorkspaceChecks", "answer_text", "grade_workspace", "has_workspace_checks"]
