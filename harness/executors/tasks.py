"""What travels to an executor and what comes back: content in, a grade and its place out.

A grading task is content only: the case (JSON), the answer's text or a project's files
(bytes), the reference's source (bytes), the level, the device and the grading options. It
never names a path that a worker must be able to read, so a Ray node needs no shared
filesystem (DESIGN.md "Executors"). The driver turns a task into steps (tasks.plan_steps:
pure), each run where its resources are free; the last step's grade is the task's grade.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from harness.checks.base import GradeOptions
from harness.common.results import Device, Level
from harness.scoring.grade import Grade

TaskKind = Literal["answer", "project"]
#: What a step needs: a core (text checks, a CPU correctness run), a compile slot (a core and
#: ~2.6 GB), a GPU (run and timing on CUDA), or the node's one CPU-timing slot.
Need = Literal["cpu", "compile", "gpu", "cpu_timing"]
#: Checks that time the candidate (and so must not share a device or cores with another timing).
TIMING_CHECKS = ("speedup",)


class ReferenceContent(BaseModel):
    """A reference.py as bytes, with the folder name it must sit in: the folder names the op
    (harness.inputs.reference.op_name_of), which the run check's rules read."""

    folder: str
    source: bytes
    sha256: str

    @classmethod
    def from_path(cls, path: Path) -> "ReferenceContent":
        data = Path(path).read_bytes()
        return cls(folder=Path(path).resolve().parent.name, source=data, sha256=hashlib.sha256(data).hexdigest())


class GradeTask(BaseModel):
    """One grading: an answer to a case (eval, rescore) or a bare project (check)."""

    key: str
    """The driver's id for it (a trial id for eval and rescore); outcomes carry it back."""
    kind: TaskKind = "answer"
    case: dict[str, Any] | None = None
    """The case as JSON (answer tasks)."""
    text: str = ""
    """The model's answer (answer tasks): the project travels inside it."""
    project_dir: str | None = None
    """Project tasks on the driver: the folder `check` was given (read by the local executor)."""
    project_name: str | None = None
    """The project folder's name, kept when its files travel (a root reference.py is named by it)."""
    files: dict[str, bytes] | None = None
    """Project tasks sent to another node: the project's files."""
    reference_path: str | None = None
    """An explicit reference on the driver (`check --reference`, `--op`): the local executor reads it."""
    reference: ReferenceContent | None = None
    """The reference as content, for another node (else the node resolves the case's op itself)."""
    level: Level
    device: Device
    options: dict[str, Any] = Field(default_factory=dict)
    """GradeOptions fields, the reference path left out (the reference travels as content)."""
    grade_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Further keyword arguments for grade_answer (e.g. answer_format), passed as given."""
    artifacts: str | None = None
    """The driver's folder for this grading: the local executor writes there, a remote one
    sends its logs back into it."""
    timing: bool | None = None
    """Whether a step times the candidate; None: from the case's required checks."""

    def grade_options(self, reference: Path | None = None) -> GradeOptions:
        return GradeOptions(**{**self.options, "reference": reference})

    def times(self) -> bool:
        """Does this grading time the candidate (a timing check required and within the level)?"""
        if self.timing is not None:
            return self.timing
        if self.level != "run":
            return False
        if self.kind == "project":
            return True  # `check` runs every project check, speedup included
        checks = ((self.case or {}).get("kernel") or {}).get("checks") or []
        return any(c in TIMING_CHECKS for c in checks)

    def has_kernel(self) -> bool:
        return self.kind == "project" or bool((self.case or {}).get("kernel"))


def options_dict(options: GradeOptions | None) -> dict[str, Any]:
    """GradeOptions as plain data, the reference path left out."""
    data = dataclasses.asdict(options or GradeOptions())
    data.pop("reference", None)
    return data


@dataclass(frozen=True)
class Step:
    """One grading step: grade_answer (or the project checks) at `level`, where `need` is free."""

    name: Literal["text", "compile", "run"]
    level: Level
    need: Need


def plan_steps(level: Level, device: Device, *, has_kernel: bool = True, timing: bool = False) -> list[Step]:
    """The steps of one grading (pure). A run-level grading is a compile step (a core and
    memory; it fills the node's content cache) then a run step that holds the device: the
    compile is a cache hit there, so a GPU or the timing slot is never held by a compile.
    A case without a kernel is text checks only, whatever the level."""
    if not has_kernel or level == "text":
        return [Step("text", level, "cpu")]
    if level == "compile":
        return [Step("compile", "compile", "compile")]
    run_need: Need = "gpu" if device == "cuda" else ("cpu_timing" if timing else "cpu")
    return [Step("compile", "compile", "compile"), Step("run", "run", run_need)]


def steps_for(task: GradeTask) -> list[Step]:
    return plan_steps(task.level, task.device, has_kernel=task.has_kernel(), timing=task.times())


class Placement(BaseModel):
    """Where one step ran: the node, the GPU it was pinned to and the toolchain there."""

    executor: str
    step: str = ""
    node: str
    """Host name."""
    node_id: str | None = None
    """Ray's node id (ray executor)."""
    lane: str | None = None
    """Local executor: the lane (gpu:N, cpu-timing:N, pool)."""
    gpu: str | None = None
    """CUDA_VISIBLE_DEVICES the step ran with (one GPU), None for CPU steps."""
    gpu_name: str | None = None
    gpu_arch: str | None = None
    driver: str | None = None
    torch: str | None = None
    nvcc: str | None = None
    cpu: str | None = None
    fingerprint: str | None = None
    """The node's toolchain fingerprint (harness.executors.node.fingerprint)."""


class StepResult(BaseModel):
    """What a worker sends back for one step."""

    key: str
    step: str
    grade: Grade
    where: Placement
    wall_s: float
    bundle: bytes | None = None
    """The step's artifacts (logs, run.json) when it ran on another node (content.pack)."""
    node_root: str | None = None
    """The folder the bundle was made from on that node (log paths are rewritten from it)."""
    node_logs: dict[str, str] = Field(default_factory=dict)
    """Log files outside node_root that the bundle carries: node path -> name in the bundle."""


class GradeOutcome(BaseModel):
    """One task's result for the driver: a grade (any verdict: the candidate's faults are
    results), or a failure of the infrastructure (the task is left ungraded: resume redoes it)."""

    key: str
    grade: Grade | None = None
    failure: str | None = None
    error_type: str | None = None
    """The failure's exception type (UserError: bad input, said in one line)."""
    where: Placement | None = None
    """Where the last step ran."""
    steps: list[Placement] = Field(default_factory=list)
    wall_s: float = 0.0
    """Submission to result, on the driver."""
    busy_s: float = 0.0
    """Time spent inside the steps (wall time on the workers)."""

    def where_record(self) -> dict[str, Any]:
        """What a grade records about where it was made (Grade.where)."""
        if self.where is None:
            return {}
        out = self.where.model_dump(exclude={"step", "fingerprint"}, exclude_none=True)
        out["steps"] = [{"step": p.step, "node": p.node, **({"node_id": p.node_id} if p.node_id else {}),
                         **({"gpu": p.gpu} if p.gpu else {})} for p in self.steps]
        return out


def stamp(grade: Grade, outcome: GradeOutcome) -> Grade:
    """The grade with where it was made, once Grade has a `where` field (the store keeps it)."""
    if "where" not in type(grade).model_fields:
        return grade
    return grade.model_copy(update={"where": outcome.where_record()})


__all__ = ["GradeOutcome", "GradeTask", "Need", "Placement", "ReferenceContent", "Step", "StepResult",
           "options_dict", "plan_steps", "stamp", "steps_for"]
