"""Who writes the test cases, and where they go.

- `generate`: the teacher writes them (step "cases"), or the model named by --test-gen-model
  (upskill's option of that name) while the teacher still writes the skill. The user's -e
  examples go into the request either way.
- `eval --test-gen-model M` on a skill folder with no cases: M writes them from the skill's name
  and description only (as upskill's eval does from the description: the body is not shown, so
  the cases are not written from the skill being judged). They are saved as SKILL_DIR/cases.json,
  where a later `eval SKILL_DIR` finds them, and evaluated like any case file.

Both use the teacher's case-writing of harness.workflows.teacher (prompt, parser, bounded retry).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from harness.common.config import load_config
from harness.common.errors import UserError
from harness.common.paths import asset_dir
from harness.inputs.cases import Case, parse_cases
from harness.inputs.skills import load_skill
from harness.models.base import ChatRequest, Completion, ModelClient
from harness.models.registry import ModelSpec, check_key, make_client, resolve
from harness.workflows import teacher as T
from harness.workflows.generate_context import GenerateContext
from harness.workflows.generate_sources import source_context

#: Cases `eval --test-gen-model` asks for (upskill's test generator asks for 3-5).
EVAL_CASES = 5
#: Where `eval --test-gen-model` saves them, in the skill folder (eval's default finds it there).
EVAL_CASES_FILE = "cases.json"


def kernel_catalogue() -> dict[str, str]:
    """op -> API signature for reference ops a generated kernel case may name: ops with a
    kernels_reference/<op>/reference.py, signatures as the shipped case files spell them."""
    ops = {p.parent.name for p in asset_dir("kernels_reference").glob("*/reference.py")}
    found: dict[str, str] = {}
    for path in sorted(asset_dir("cases").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for case in data.get("cases", []) if isinstance(data, dict) else []:
            kernel = case.get("kernel") if isinstance(case, dict) else None
            if isinstance(kernel, dict) and kernel.get("op") in ops and isinstance(kernel.get("api"), str):
                found.setdefault(kernel["op"], kernel["api"])
    return dict(sorted(found.items()))


@contextlib.contextmanager
def model_client(spec: ModelSpec, *, timeout_s: float, attempts: int) -> Iterator[ModelClient]:
    """A client for one teacher-side model; `local` starts the embedded server for as long as it is used."""
    with contextlib.ExitStack() as stack:
        url = None
        if spec.provider == "local":
            from harness.models.local_server import local_endpoint

            url, _ = stack.enter_context(local_endpoint())
        yield make_client(spec, timeout_s=timeout_s, attempts=attempts, base_url_override=url)


def generate_cases(ctx: GenerateContext) -> list[Case]:
    """generate's step "cases": given ones, or written by --test-gen-model (else the teacher)."""
    data = ctx.steps.get("cases")
    if data is None:
        writer = ctx.case_writer or ctx.teacher
        who = ctx.opts.test_gen_model if ctx.case_writer is not None else "teacher"
        ctx.hooks.on_phase(f"{who}: writing test cases")
        source = ctx.steps.get("source") or {}
        ops = kernel_catalogue()
        request = T.cases_request(ctx.opts.task, n_cases=ctx.opts.n_cases, context=source_context(source),
                                  kernel_ops=ops, examples=ctx.opts.examples, max_tokens=ctx.opts.teacher_max_tokens,
                                  temperature=ctx.opts.teacher_temperature)
        assert writer is not None
        cases = T.ask(writer, request, log_=ctx.steps, step="cases", attempts=ctx.opts.teacher_attempts,
                      accept=lambda text: T.parse_cases_answer(text, known_ops=set(ops)))
        data = {"cases": cases, "from": "teacher" if ctx.case_writer is None else f"test-gen-model {who}"}
        ctx.steps.put("cases", data)
    return parse_cases(data["cases"], source=f"run {ctx.run_id} cases")


class MemoryCallLog:
    """T.CallLog for a one-off case-writing call outside a generate run: kept in memory, and the
    outcome written into the case file it produced."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def calls(self, step: str) -> list[T.StoredCall]:
        return []  # nothing to replay: each eval --test-gen-model asks afresh

    def start(self, step: str, attempt: int, request: ChatRequest) -> int:
        self.records.append({"attempt": attempt, "status": "pending"})
        return len(self.records) - 1

    def answered(self, call_id: int, completion: Completion) -> None:
        self.records[call_id] |= {"status": "answered", "input_tokens": completion.input_tokens,
                                  "output_tokens": completion.output_tokens}

    def failed(self, call_id: int, error: str) -> None:
        self.records[call_id] |= {"status": "error", "problem": error}

    def judged(self, call_id: int, ok: bool, problem: str | None) -> None:
        self.records[call_id] |= {"status": "ok" if ok else "invalid"} | ({"problem": problem} if problem else {})


def write_skill_cases(skill_dir: Path, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                      timeout_s: float = 300.0, attempts: int = 5, answers: int = 3, n_cases: int = EVAL_CASES,
                      max_tokens: int = 4096) -> Path:
    """`eval --test-gen-model`: `model` writes cases for the skill at `skill_dir` from its name and
    description; saved as SKILL_DIR/cases.json (refused when one is there). Returns its path."""
    skill_dir = Path(skill_dir)
    dest = skill_dir / EVAL_CASES_FILE
    if dest.exists():
        raise UserError(f"{dest}: already exists; it is the skill's case file (no --test-gen-model needed)")
    skill = load_skill(skill_dir)
    spec = resolve(model, load_config(), base_url=base_url, api_key_env=api_key_env)
    check_key(spec)
    task = f"{skill.name}: {skill.description}"
    ops = kernel_catalogue()
    request = T.cases_request(task, n_cases=n_cases, kernel_ops=ops, max_tokens=max_tokens)
    calls = MemoryCallLog()
    with model_client(spec, timeout_s=timeout_s, attempts=attempts) as client:
        cases = T.ask(client, request, log_=calls, step="cases", attempts=answers,
                      accept=lambda text: T.parse_cases_answer(text, minimum=1, known_ops=set(ops)))
    payload = {"cases": cases, "generated": {
        "by": "kernelgrade eval --test-gen-model", "model": model, "provider": spec.provider,
        "model_id": spec.model_id, "from": f"the name and description of {skill_dir / 'SKILL.md'}",
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "calls": calls.records}}
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=skill_dir)
    except OSError as err:
        raise UserError(f"{dest}: cannot write the generated cases ({err.strerror}); copy the skill folder "
                        "somewhere writable, or pass --cases") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, dest)
    return dest


__all__ = ["EVAL_CASES", "EVAL_CASES_FILE", "MemoryCallLog", "generate_cases", "kernel_catalogue", "model_client",
           "write_skill_cases"]
