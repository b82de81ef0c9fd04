"""Test cases: upskill's JSON format, loaded unchanged, plus kernelgrade's extensions.

upskill: {"cases": [{"input": "...", "expected": {"contains": "9.0"}}]}, where
`contains` is a string or a list. Extensions (DESIGN.md "Core data"):
`not_contains`, an optional `id`, and an optional `kernel` block.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.common.errors import UserError
from harness.common.results import CheckName
from harness.common.check_table import CHECK_ORDER


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


class Expected(BaseModel):
    """Text assertions: every `contains` item must appear, no `not_contains` item may."""

    model_config = ConfigDict(extra="allow")

    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)

    @field_validator("contains", "not_contains", mode="before")
    @classmethod
    def _string_or_list(cls, value: Any) -> list[str]:
        return _as_list(value)


class SassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require: list[str] = Field(default_factory=list)
    """SASS markers that must appear in at least one kernel (e.g. HGMMA, LDGSTS)."""
    forbid: list[str] = Field(default_factory=list)
    """SASS markers that must not appear in any kernel."""


class KernelSpec(BaseModel):
    """What a kernel answer must provide and which checks grade it."""

    model_config = ConfigDict(extra="forbid")

    op: str
    """A module in kernels_reference/ (its reference.py is the ground truth), or the op's name
    when `reference` points at the reference file."""
    reference: str | None = None
    """A reference.py of this case's own (e.g. one `cases import-kernelbench` wrote): a path,
    relative to the case file. It wins over kernels_reference/<op>."""
    api: str
    """The Python function the answer's package must expose, with its signature, e.g.
    "rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor"."""
    capabilities: list[str] = Field(default_factory=lambda: ["9.0"])
    dtypes: list[str] = Field(default_factory=lambda: ["float32"])
    shapes: list[list[int]] | None = None
    """Shapes to test; None means the reference's SHAPES."""
    atol: float | None = None
    rtol: float | None = None
    """None means the per-dtype default (fp32 1e-4, bf16/fp16 1e-2)."""
    checks: list[CheckName] = Field(default_factory=lambda: ["build_toml", "compile"])
    sass: SassSpec = Field(default_factory=SassSpec)
    min_speedup: float | None = None
    baseline: Literal["eager", "compile"] = "eager"
    """What the speedup is measured against: the eager PyTorch reference, or the reference
    compiled with torch.compile (KernelBench's second baseline)."""

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        # Keep the canonical order whatever order the file uses.
        return [c for c in CHECK_ORDER if c in value]

    @property
    def api_name(self) -> str:
        return self.api.split("(", 1)[0].strip()


class CaseContext(BaseModel):
    """upskill's `context`: files the task refers to, shown after the input (as upskill shows them)."""

    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] | None = None
    """File name -> content; each is appended to the prompt as a fenced block named by the file."""


class Case(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = ""
    """Stable identity for pairing across arms and runs; default sha256(input)[:12]."""
    input: str
    expected: Expected = Field(default_factory=Expected)
    kernel: KernelSpec | None = None
    context: CaseContext | None = None
    """upskill's context: its files are part of the task text, in both arms."""
    output_file: str | None = None
    """upskill's field: a workspace file graded instead of the final message. Agent mode only
    (a one-shot answer has no workspace); a one-shot eval refuses a case that sets it."""
    max_turns: int | None = Field(default=None, ge=1)
    """Agent mode: this case's turn limit, in place of --max-turns."""

    @field_validator("output_file")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value.startswith("/") or ".." in value.split("/")):
            raise ValueError("must be a relative path inside the workspace, without '..'")
        return value

    @model_validator(mode="after")
    def _default_id(self) -> "Case":
        if not self.id:
            self.id = hashlib.sha256(self.input.encode()).hexdigest()[:12]
        return self

    @property
    def task_input(self) -> str:
        """The input with context.files appended exactly as upskill appends them
        (upskill/evaluate.py: "\\n\\n```NAME\\nCONTENT\\n```" per file, in the file's order)."""
        text = self.input
        if self.context is not None and self.context.files:
            for name, content in self.context.files.items():
                text += f"\n\n```{name}\n{content}\n```"
        return text

    @property
    def required_checks(self) -> list[str]:
        """markers (when the case has text assertions) then the kernel block's checks, and
        the static scan for every kernel case: it costs milliseconds, and a project that
        plainly cheats fails at every level, also where nothing can run."""
        checks: list[str] = []
        if self.expected.contains or self.expected.not_contains:
            checks.append("markers")
        if self.kernel:
            checks.extend(c for c in CHECK_ORDER if c in self.kernel.checks or c == "scan")
        return checks

    @property
    def assertion_count(self) -> int:
        """Each contains / not_contains item and each required kernel check is one assertion."""
        kernel_checks = len(self.kernel.checks) if self.kernel else 0
        return len(self.expected.contains) + len(self.expected.not_contains) + kernel_checks


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(case)"
    got = first.get("input")
    shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) and first["type"] != "missing" else ""
    return f"{where}: {first['msg']}{shown}"


def parse_cases(data: Any, *, source: str = "<cases>") -> list[Case]:
    """Validate loaded JSON; errors name the source, the case index and what is wrong."""
    if isinstance(data, list):  # a bare list of cases is accepted too
        items = data
    elif isinstance(data, dict) and isinstance(data.get("cases"), list):
        items = data["cases"]
    else:
        raise UserError(f'{source}: expected an object with a "cases" list')
    if not items:
        raise UserError(f"{source}: no cases")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise UserError(f"{source}: case {index}: expected an object, got {type(item).__name__}")
        if item.get("validator") is not None or item.get("validator_config") is not None:
            # upskill runs a named validator on the answer; kernelgrade has none of them, and
            # grading without it would measure something other than upskill does.
            name = item.get("validator") or "(validator_config only)"
            raise UserError(f"{source}: case {index}: upskill validator {name!r} is not supported by kernelgrade; "
                            "remove it and state the check as expected.contains / not_contains or a kernel block")
        try:
            case = Case.model_validate(item)
        except ValidationError as err:
            raise UserError(f"{source}: case {index}: {_describe(err)}") from None
        if case.id in seen:
            raise UserError(f"{source}: case {index}: duplicate id {case.id!r} (also case {seen[case.id]})")
        seen[case.id] = index
        cases.append(case)
    return cases


def load_cases(path: str | Path) -> list[Case]:
    """A case file (upskill's {"cases": [...]}, a bare list, or kernelgrade's with kernel blocks),
    or a skill folder's skill_meta.json (its tests, with the ids kernelgrade kept beside them)."""
    path = Path(path)
    if path.name == "skill_meta.json" and path.is_file():
        from harness.inputs.skill_meta import read_skill_meta

        meta = read_skill_meta(path.parent)
        assert meta is not None
        if not meta.tests:
            raise UserError(f"{path}: no tests")
        return parse_cases(meta.tests, source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such case file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    cases = parse_cases(data, source=str(path))
    for case in cases:  # a stored run keeps working from any folder
        if case.kernel is not None and case.kernel.reference is not None:
            ref = Path(case.kernel.reference)
            case.kernel.reference = str(ref if ref.is_absolute() else (path.parent / ref).resolve())
    return cases
