"""The teacher: prompts that ask a strong model for a skill (or test cases), parsing of
its answer into files, validation against the Agent Skills spec and the token budget,
and a bounded retry that tells the teacher what was wrong.

The teacher answers with file blocks:

    <file path="SKILL.md">
    ---
    name: ...
    description: ...
    ---
    body
    </file>
    <file path="references/details.md">...</file>

`<file>` tags rather than code fences, because a skill's own text is full of fences.
An answer with no file block is taken whole as SKILL.md (with frontmatter) or as its
body (the harness then writes the frontmatter from the name and the task): small
models rarely keep a format, and the body is what is graded anyway.

Nothing here executes what the teacher wrote; scripts/ files are only saved.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel

from harness.common.errors import KernelgradeError, UserError
from harness.inputs.cases import parse_cases
from harness.inputs.skills import (
    CHARS_PER_TOKEN,
    SKILL_FILE,
    load_skill,
    split_frontmatter,
    validate_skill,
)
from harness.models.base import ChatRequest, Completion, ModelCallError, ModelClient

log = logging.getLogger(__name__)

__all__ = ["TeacherAnswerError", "TeacherCallFailed", "CallLog", "ask", "cases_request", "examples_block", "skill_request",
           "refine_request", "parse_skill_answer", "parse_cases_answer", "build_skill", "ensure_frontmatter", "skill_name_for",
           "estimate_tokens", "BuiltSkill", "summary_request", "accept_summary"]

T = TypeVar("T")

SYSTEM = (
    "You are an expert GPU kernel engineer who writes Agent Skills: short, dense instructions that let a "
    "smaller model do a task right on the first try. Write only what the smaller model would otherwise get "
    "wrong: exact values, names, file layouts, pitfalls and their fixes. No filler."
)

FORMAT = (
    "Answer with files only, each as:\n"
    '<file path="SKILL.md">\n...\n</file>\n'
    "SKILL.md starts with YAML frontmatter between '---' lines holding exactly `name: {name}` and a one-line "
    "`description:` that says what the skill does and when to use it; then the Markdown body. "
    "Optional further files go under references/ (longer detail, inlined for the reader) or scripts/ "
    "(code); link every one of them from the body by its relative path."
)

MAX_FILES = 20
MAX_FILE_CHARS = 100_000
ALLOWED_TOPS = ("references", "scripts", "assets")


class TeacherAnswerError(ValueError):
    """The teacher's answer cannot be used; the message (one line) is sent back to it."""


class TeacherCallFailed(KernelgradeError):
    """A teacher call failed after its retries; the run stops, resumable."""

    exit_code = 3


class StoredCall(BaseModel):
    id: int
    attempt: int
    status: str
    """pending | answered | ok | invalid | error"""
    text: str | None = None
    problem: str | None = None


class CallLog(Protocol):
    """Where teacher calls are stored: the request before the call, the answer before parsing."""

    def calls(self, step: str) -> list[StoredCall]: ...
    def start(self, step: str, attempt: int, request: ChatRequest) -> int: ...
    def answered(self, call_id: int, completion: Completion) -> None: ...
    def failed(self, call_id: int, error: str) -> None: ...
    def judged(self, call_id: int, ok: bool, problem: str | None) -> None: ...


# --- prompts ---------------------------------------------------------------------

def estimate_tokens(text: str) -> int:
    """The documented estimate: characters / 4, rounded up (harness.inputs.skills.CHARS_PER_TOKEN)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _budget_line(max_tokens: int) -> str:
    return (f"Budget: the SKILL.md body (after the frontmatter) must stay under {max_tokens} tokens "
            f"(about {max_tokens * CHARS_PER_TOKEN} characters). Put longer material in references/.")


def examples_block(examples: list[str] | None) -> str:
    """The user's examples of the task (upskill's -e "input -> output"), one per line, or nothing."""
    shown = [e.strip() for e in examples or [] if e.strip()]
    if not shown:
        return ""
    return ("Examples of the task, as the user gave them (input -> output):\n"
            + "\n".join(f"- {e}" for e in shown) + "\n\n")


def cases_request(task: str, *, n_cases: int, context: str = "", kernel_ops: dict[str, str] | None = None,
                  examples: list[str] | None = None, max_tokens: int = 4096,
                  temperature: float | None = 0.7) -> ChatRequest:
    kernels = ""
    if kernel_ops:
        kernels = (
            "A case that asks for a whole kernel project may also carry a kernel block, graded by building and "
            'running the answer against a reference: "kernel": {"op": OP, "api": API, "checks": ["build_toml", '
            '"compile", "run"]}. Known OP -> API:\n' + "\n".join(f"{op} -> {api}" for op, api in kernel_ops.items())
            + "\n")
    user = (
        f"Task: {task}\n\n{examples_block(examples)}{context}"
        f"Write {n_cases} test cases for this task: prompts a user would give a model, each with the short "
        "strings a correct answer must contain (exact values a model without expert knowledge gets wrong, "
        "e.g. \"9.0\" for an H100 capability) and, optionally, strings it must not contain. Keep each string "
        "short and unambiguous.\n"
        f"{kernels}"
        'Answer with JSON only: {"cases": [{"input": "...", "expected": {"contains": ["..."], '
        '"not_contains": ["..."]}}]}'
    )
    return ChatRequest(system=SYSTEM, user=user, max_tokens=max_tokens, temperature=temperature)


def skill_request(task: str, *, name: str, max_skill_tokens: int, context: str = "", tools: str = "",
                  examples: list[str] | None = None, max_tokens: int = 4096,
                  temperature: float | None = 0.7) -> ChatRequest:
    user = (f"Task: {task}\n\n{examples_block(examples)}{context}{tools}"
            f"Write a skill that teaches a smaller model to do this task.\n{_budget_line(max_skill_tokens)}\n\n"
            + FORMAT.format(name=name))
    return ChatRequest(system=SYSTEM, user=user, max_tokens=max_tokens, temperature=temperature)


def summary_request(task: str, *, chunk: str, index: int, total: int, max_tokens: int,
                    temperature: float | None = 0.7) -> ChatRequest:
    """One piece of a trace too long for one prompt: keep what a skill needs from it."""
    user = (f"Task: {task}\n\nThis is part {index} of {total} of a compacted record of an expert agent doing "
            f"the task.\n<trace-part>\n{chunk}</trace-part>\n\n"
            "Summarise this part for someone writing a skill: the steps taken, exact values, file names and "
            "commands that mattered, every error and the fix that worked. Plain notes, no preamble.")
    return ChatRequest(system=SYSTEM, user=user, max_tokens=max_tokens, temperature=temperature)


def accept_summary(text: str) -> str:
    if not text.strip():
        raise TeacherAnswerError("the summary is empty")
    return text.strip()


def _files_block(files: dict[str, str]) -> str:
    return "\n".join(f'<file path="{p}">\n{t.rstrip()}\n</file>' for p, t in files.items())


def refine_request(task: str, *, name: str, files: dict[str, str], failures: list[dict[str, Any]],
                   max_skill_tokens: int, tools: str = "", examples: list[str] | None = None,
                   max_tokens: int = 4096, temperature: float | None = 0.7) -> ChatRequest:
    """failures: dicts with input, expected, answer (clipped) and why; train cases only."""
    shown = "\n\n".join(
        f"- Case: {f['input']}\n  Expected: {json.dumps(f['expected'])}\n  Why it failed: {f['why']}\n"
        f"  Student's answer (clipped): {f['answer']}" for f in failures)
    user = (f"Task: {task}\n\n{examples_block(examples)}{tools}The current skill:\n{_files_block(files)}\n\n"
            f"A student model given this skill still failed these cases:\n{shown}\n\n"
            "Rewrite the skill so the student gets cases like these right. Teach the general rule behind each "
            "failure, not the answer to one case.\n"
            f"{_budget_line(max_skill_tokens)}\n\n" + FORMAT.format(name=name))
    return ChatRequest(system=SYSTEM, user=user, max_tokens=max_tokens, temperature=temperature)


def with_feedback(request: ChatRequest, problem: str) -> ChatRequest:
    return request.model_copy(update={"user": (
        f"{request.user}\n\nYour previous answer could not be used: {problem}\nAnswer again, following the "
        "format exactly.")})


# --- parsing ---------------------------------------------------------------------

_FILE_BLOCK = re.compile(r'<file\s+path\s*=\s*["\']([^"\'>]+)["\']\s*>\n?(.*?)</file>', re.S)
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def skill_name_for(task: str) -> str:
    """A spec-valid skill name from the first words of the task (<= 64 chars)."""
    words = re.findall(r"[a-z0-9]+", task.lower())
    name = ""
    for w in words:
        candidate = f"{name}-{w}" if name else w
        if len(candidate) > 48:
            break
        name = candidate
    return name or "skill"


def _safe_rel(path: str) -> str:
    p = PurePosixPath(path.strip().replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise TeacherAnswerError(f"file path {path!r} is not a safe relative path")
    rel = p.as_posix()
    if rel.lower() == "skill.md":
        return SKILL_FILE
    if p.parts[0] not in ALLOWED_TOPS or len(p.parts) < 2:
        raise TeacherAnswerError(f"file path {path!r}: only SKILL.md and files under references/, scripts/ "
                                 "or assets/ belong in a skill")
    return rel


def parse_skill_answer(text: str, *, name: str, description: str) -> tuple[dict[str, str], list[str]]:
    """(files by relative path, notes). Raises TeacherAnswerError for an unusable answer."""
    notes: list[str] = []
    files: dict[str, str] = {}
    blocks = _FILE_BLOCK.findall(text)
    if blocks:
        for path, body in blocks:
            rel = _safe_rel(path)
            if rel in files:
                raise TeacherAnswerError(f"file {rel} given twice")
            files[rel] = body
    else:
        stripped = text.strip()
        stripped = re.sub(r"^```[\w-]*\n(.*)\n```$", r"\1", stripped, flags=re.S)  # one wrapping fence
        if not stripped:
            raise TeacherAnswerError("the answer is empty")
        files[SKILL_FILE] = stripped + "\n"
        notes.append("no <file> blocks: the whole answer was taken as SKILL.md")
    if SKILL_FILE not in files:
        raise TeacherAnswerError('no <file path="SKILL.md"> block')
    if len(files) > MAX_FILES:
        raise TeacherAnswerError(f"{len(files)} files, more than {MAX_FILES}")
    for rel, body in files.items():
        if len(body) > MAX_FILE_CHARS:
            raise TeacherAnswerError(f"{rel} has {len(body)} characters, over {MAX_FILE_CHARS}")
    files[SKILL_FILE] = ensure_frontmatter(files[SKILL_FILE], name=name, description=description, notes=notes)
    return files, notes


def ensure_frontmatter(text: str, *, name: str, description: str, notes: list[str]) -> str:
    """The harness owns `name` (it is the folder name); a missing frontmatter is written."""
    if not text.lstrip().startswith("---"):
        notes.append("no frontmatter: written by the harness from the name and the task")
        fm = {"name": name, "description": description}
        return "---\n" + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True, width=10_000) + "---\n\n" + text.lstrip()
    try:
        fm, body = split_frontmatter(text.lstrip())
    except ValueError as err:
        raise TeacherAnswerError(f"SKILL.md frontmatter: {err}") from None
    if fm.get("name") == name:
        return text.lstrip()
    notes.append(f"frontmatter name {fm.get('name')!r} replaced by {name!r} (the folder name)")
    fm["name"] = name
    return "---\n" + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True, width=10_000) + "---\n" + body


class BuiltSkill(BaseModel):
    path: Path
    sha256: str
    body_tokens: int
    """SKILL.md body, by the counter named in `token_method`."""
    block_tokens: int
    """SKILL.md plus inlined references/ (what the student reads), same counter."""
    token_method: str
    files: dict[str, str]
    warnings: list[str]


def build_skill(files: dict[str, str], dest: Path, *, max_body_tokens: int,
                counter: Callable[[str], int] | None = None, counter_name: str = "estimate") -> BuiltSkill:
    """Write files into a temporary folder beside `dest`, validate, then rename to `dest`.

    Nothing is left at `dest` unless the skill is valid and within budget (TeacherAnswerError
    otherwise). An existing `dest` is replaced only after the new folder validated.
    """
    count = counter or estimate_tokens
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        folder = tmp_root / dest.name  # the spec wants the folder named like the skill
        for rel, text in files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        findings = validate_skill(folder)
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            shown = "; ".join(f"{f.key}: {f.reason}" for f in errors[:3])
            raise TeacherAnswerError(f"invalid skill: {shown}" + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""))
        skill = load_skill(folder)
        body_tokens = count(skill.body)
        if body_tokens > max_body_tokens:
            raise TeacherAnswerError(
                f"the SKILL.md body is {body_tokens} tokens ({counter_name}), over the budget of {max_body_tokens}: "
                "shorten it and move longer material to references/")
        block_tokens = count(skill.prompt_block())
        if dest.exists():
            old = tmp_root / ".replaced"
            dest.rename(old)
        folder.rename(dest)
        return BuiltSkill(path=dest, sha256=load_skill(dest).sha256, body_tokens=body_tokens,
                          block_tokens=block_tokens, token_method=counter_name, files=dict(files),
                          warnings=[f"{f.key}: {f.reason}" for f in findings if f.severity == "warning"])
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def parse_cases_answer(text: str, *, minimum: int = 2, known_ops: set[str] | None = None) -> list[dict[str, Any]]:
    """The teacher's case JSON, validated as a case file. Raises TeacherAnswerError."""
    body = text.strip()
    fenced = re.search(r"```(?:json)?\s*\n(.*?)\n```", body, re.S)
    if fenced:
        body = fenced.group(1)
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise TeacherAnswerError('no JSON in the answer (expected {"cases": [...]})')
    try:
        data, _ = json.JSONDecoder().raw_decode(body[start:])
    except ValueError as err:
        raise TeacherAnswerError(f"the cases are not valid JSON: {err}") from None
    try:
        cases = parse_cases(data, source="teacher's cases")
    except UserError as err:
        raise TeacherAnswerError(str(err)) from None
    if len(cases) < minimum:
        raise TeacherAnswerError(f"{len(cases)} case(s); at least {minimum} are needed for a train / held-out split")
    unknown = [c.kernel.op for c in cases if c.kernel and known_ops is not None and c.kernel.op not in known_ops]
    if unknown:
        raise TeacherAnswerError(f"kernel op {unknown[0]!r} has no reference (known: {', '.join(sorted(known_ops or []))})")
    empty = [c.id for c in cases if not c.required_checks]
    if empty:
        raise TeacherAnswerError(f"case {empty[0]} has nothing to check (give expected.contains)")
    return [c.model_dump(mode="json", exclude_defaults=True) | {"id": c.id} for c in cases]


# --- the bounded ask loop -----------------------------------------------------------

def ask(client: ModelClient, request: ChatRequest, *, log_: CallLog, step: str, attempts: int,
        accept: Callable[[str], T]) -> T:
    """Call the teacher until `accept` takes its answer, at most `attempts` answers.

    Stored answers of an earlier (interrupted) run are replayed first, so a resume
    never calls the teacher again for an answer it already has. A failed call raises
    TeacherCallFailed (the attempt stays stored as an error; resume redoes it); too
    many unusable answers raise UserError with the last problem.
    """
    current = request
    used = 0
    problem: str | None = None
    for call in log_.calls(step):
        if call.text is None:
            continue  # never answered (crash or failed call): redo it below
        try:
            value = accept(call.text)
        except TeacherAnswerError as err:
            problem = str(err)
            log_.judged(call.id, False, problem)
            used += 1
            current = with_feedback(request, problem)
            continue
        log_.judged(call.id, True, None)
        return value
    while used < attempts:
        call_id = log_.start(step, used + 1, current)
        try:
            completion = client.complete(current)
        except ModelCallError as err:
            log_.failed(call_id, str(err))
            raise TeacherCallFailed(f"teacher call failed ({step}): {err}") from None
        log_.answered(call_id, completion)
        try:
            value = accept(completion.text)
        except TeacherAnswerError as err:
            problem = str(err)
            log.warning("teacher answer for %s unusable (attempt %d of %d): %s", step, used + 1, attempts, problem)
            log_.judged(call_id, False, problem)
            used += 1
            current = with_feedback(request, problem)
            continue
        log_.judged(call_id, True, None)
        return value
    raise UserError(f"teacher gave no usable answer for {step} in {attempts} attempts; last problem: {problem}")
