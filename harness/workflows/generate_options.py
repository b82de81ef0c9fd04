"""What a generate run is asked (GenerateOptions) and what it returns (GenerateResult)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from pydantic import BaseModel, Field

from harness.common.errors import KernelgradeError
from harness.report.summary import LiftLine
from harness.workflows.evaluate import Progress, StudentSettings

DEFAULT_MAX_SKILL_TOKENS = 600
#: Context the teacher is assumed to have when --teacher-context is not given.
DEFAULT_TEACHER_CONTEXT = 100_000
#: The embedded model's server runs with this context (harness.models.local_server).
LOCAL_CONTEXT = 8192
#: Tokens kept free in the teacher's context for instructions and its own answer overhead.
PROMPT_OVERHEAD = 1200
ANSWER_CLIP = 800
#: A trace over the teacher's budget is summarised in at most this many pieces ...
MAX_TRACE_CHUNKS = 16
#: ... each piece at least this long, each summary given at least this many tokens.
MIN_CHUNK_TOKENS = 256
MIN_SUMMARY_TOKENS = 64


class StudentCallsFailed(KernelgradeError):
    """Student calls failed in a phase; the run stops, resumable."""

    exit_code = 3


class GenerateOptions(StudentSettings):
    task: str
    teacher: str
    students: list[str]
    from_path: Path | None = None
    tool_files: list[Path] = Field(default_factory=list)
    cases_path: Path | None = None
    n_cases: int = 20
    iterations: int = 1
    max_skill_tokens: int = DEFAULT_MAX_SKILL_TOKENS
    name: str | None = None
    teacher_base_url: str | None = None
    teacher_api_key_env: str | None = None
    teacher_context: int | None = None
    """Tokens; default: the embedded server's context for `local`, else DEFAULT_TEACHER_CONTEXT."""
    teacher_max_tokens: int = 4096
    teacher_temperature: float | None = 0.7
    teacher_attempts: int = 3
    """Answers the teacher may give per step before the run gives up (invalid skill or cases)."""
    eval_base_url: str | None = None
    eval_api_key_env: str | None = None
    seed: int = 0
    holdout_fraction: float = 0.4
    out_skills: Path = Path("skills")
    out_cases: Path = Path("cases")
    examples: list[str] = Field(default_factory=list)
    """upskill's -e "input -> output": shown to the teacher when it writes the skill and the cases."""
    test_gen_model: str | None = None
    """upskill's --test-gen-model: the model that writes the cases (default: the teacher)."""
    no_eval: bool = False
    """upskill's --no-eval: write the skill only (no cases, no student phases, no refinement)."""


class IterationResult(BaseModel):
    index: int
    skill_sha256: str
    body_tokens: int
    block_tokens: int
    train_run_id: str
    train_pass_with: dict[str, float | None]
    """Per student: with-skill pass rate on train."""
    train_failures: int
    notes: list[str] = Field(default_factory=list)


class ModelVerdict(LiftLine):
    """The held-out lift line of one student (harness.report.summary.LiftLine: pass rates,
    paired lift, McNemar, verdict words, upskill's rule) plus what generate decides from it."""

    lift_per_1k_tokens: float | None
    """Lift (pass-rate points, 0-1) per 1000 tokens of skill the student reads."""
    tokens_baseline: float | None
    tokens_with: float | None
    """Average tokens (input + output) per held-out trial in each arm."""
    use: bool
    statement: str


class GenerateResult(BaseModel):
    run_id: str
    status: str
    task: str
    name: str
    teacher: str
    students: list[str]
    skill_path: str | None
    cases_path: str | None
    source: dict[str, Any]
    split: dict[str, Any]
    iterations: list[IterationResult]
    chosen_iteration: int | None
    train_baseline: dict[str, float | None]
    holdout_run_id: str | None
    skill_body_tokens: int | None
    skill_block_tokens: int | None
    token_method: str | None
    verdicts: list[ModelVerdict]
    teacher_calls: dict[str, int]
    notes: list[str] = Field(default_factory=list)
    evaluated: bool = True
    """False with --no-eval: the skill was written and nothing was measured."""


@dataclass
class GenerateHooks:
    """How the CLI follows along; the library never prints."""

    on_phase: Callable[[str], None] = lambda label: None
    eval_progress: Callable[[str], ContextManager[Progress]] = field(
        default=lambda label: contextlib.nullcontext(Progress()))


__all__ = ["GenerateHooks", "GenerateOptions", "GenerateResult", "IterationResult", "ModelVerdict", "StudentCallsFailed"]
