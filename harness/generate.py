"""`generate`: a teacher writes a skill (and cases); the harness proves whether it helps.

The loop (issues 9 and 11), every step stored so a run resumes where it stopped:

1. source   --from: an existing skill folder (improved), or a trace compacted by
            harness.traces; --tool MCP schemas. Nothing here calls a model.
2. cases    --cases, else the teacher writes them (its call stored before parsing).
3. split    a seeded split into train and held-out; held-out cases are never shown
            to the teacher and never used to pick a skill.
4. draft-0  the teacher's first skill (or the --from skill as it is).
5. train-i  baseline (i = 0 only) and with-skill on train: an eval run per iteration,
            created here and executed by harness.evaluate.execute (one executor).
6. draft-i+1 the teacher rewrites the skill from the with-skill failures on train;
            up to --iterations times; the best iteration on train is kept.
7. holdout  baseline vs the kept skill on held-out cases only: the figures reported.
8. write    skills/NAME/ and cases/NAME.json, each built aside and renamed into place.

Storage: the generate run is a `runs` row of kind "generate"; its eval runs are
ordinary eval runs (re-scorable with `rescore`), linked by config "generate_run".
Teacher calls and step results live in two tables created here (teacher_calls,
generate_steps) through Store's connection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from pydantic import BaseModel, Field

from harness import teacher as T
from harness.cases import Case, load_cases, parse_cases
from harness.config import load_config
from harness.errors import KernelgradeError, UserError
from harness.evaluate import ARMS, EvalOptions, Progress, StudentSettings, execute, skill_record
from harness.models.base import ChatRequest, Completion, ModelClient
from harness.models.registry import ModelSpec, check_key, make_client, resolve
from harness.paths import artifacts_dir, repo_root
from harness.provenance import environment
from harness.report.summary import LiftLine
from harness.skills import CHARS_PER_TOKEN, SKILL_FILE, load_skill, validate_skill
from harness.stats import MIN_DISCORDANT
from harness.store import Store, now

log = logging.getLogger(__name__)

__all__ = ["GenerateOptions", "GenerateResult", "GenerateHooks", "start_generate", "run_generate",
           "StudentCallsFailed", "teacher_calls", "linked_runs", "generate_step", "copy_generate_log"]

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

_TABLES = [
    """CREATE TABLE IF NOT EXISTS teacher_calls (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,              -- cases | draft-N
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,            -- pending | answered | ok | invalid | error
        request TEXT NOT NULL,           -- JSON ChatRequest, stored before the call
        completion TEXT,                 -- JSON Completion, stored before parsing
        problem TEXT,                    -- why the answer was refused, or the call error
        created TEXT NOT NULL,
        updated TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS teacher_calls_run ON teacher_calls (run_id, step, id)",
    """CREATE TABLE IF NOT EXISTS generate_steps (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,
        data TEXT NOT NULL,              -- JSON: what the step produced
        updated TEXT NOT NULL,
        PRIMARY KEY (run_id, step))""",
]


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


@dataclass
class GenerateHooks:
    """How the CLI follows along; the library never prints."""

    on_phase: Callable[[str], None] = lambda label: None
    eval_progress: Callable[[str], ContextManager[Progress]] = field(
        default=lambda label: contextlib.nullcontext(Progress()))


# --- storage -----------------------------------------------------------------------

class _Log:
    """teacher_calls and generate_steps on the Store's connection (its lock, its WAL)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        for sql in _TABLES:
            store.execute(sql)

    # CallLog
    def calls(self, step: str) -> list[T.StoredCall]:
        rows = self.store.execute("SELECT id, attempt, status, completion, problem FROM teacher_calls"
                                " WHERE run_id=? AND step=? ORDER BY id", (self.run_id, step)).fetchall()
        return [T.StoredCall(id=r["id"], attempt=r["attempt"], status=r["status"], problem=r["problem"],
                             text=json.loads(r["completion"])["text"] if r["completion"] else None) for r in rows]

    def start(self, step: str, attempt: int, request: ChatRequest) -> int:
        cur = self.store.execute("INSERT INTO teacher_calls (run_id, step, attempt, status, request, created, updated)"
                               " VALUES (?,?,?,?,?,?,?)",
                               (self.run_id, step, attempt, "pending", request.model_dump_json(), now(), now()))
        return int(cur.lastrowid)

    def answered(self, call_id: int, completion: Completion) -> None:
        self.store.execute("UPDATE teacher_calls SET status='answered', completion=?, updated=? WHERE id=?",
                         (completion.model_dump_json(), now(), call_id))

    def failed(self, call_id: int, error: str) -> None:
        self.store.execute("UPDATE teacher_calls SET status='error', problem=?, updated=? WHERE id=?",
                         (error, now(), call_id))

    def judged(self, call_id: int, ok: bool, problem: str | None) -> None:
        self.store.execute("UPDATE teacher_calls SET status=?, problem=?, updated=? WHERE id=?",
                         ("ok" if ok else "invalid", problem, now(), call_id))

    # steps
    def get(self, step: str) -> dict | None:
        row = self.store.execute("SELECT data FROM generate_steps WHERE run_id=? AND step=?",
                               (self.run_id, step)).fetchone()
        return json.loads(row["data"]) if row else None

    def put(self, step: str, data: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO generate_steps VALUES (?,?,?,?)",
                         (self.run_id, step, json.dumps(data, default=str), now()))

    def call_counts(self) -> dict[str, int]:
        rows = self.store.execute("SELECT status, COUNT(*) AS n FROM teacher_calls WHERE run_id=? GROUP BY status",
                                (self.run_id,)).fetchall()
        counts = {r["status"]: r["n"] for r in rows}
        return counts | {"total": sum(counts.values())}


def teacher_calls(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every stored teacher call of a generate run, oldest first (request, answer, verdict)."""
    _Log(store, run_id)
    rows = store.execute("SELECT * FROM teacher_calls WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
    return [dict(r) | {"request": json.loads(r["request"]),
                       "completion": json.loads(r["completion"]) if r["completion"] else None} for r in rows]


def linked_runs(store: Store, run_id: str) -> dict[str, str]:
    """phase (train-0, train-1, ..., holdout) -> id of the eval run that generate run made for it."""
    _Log(store, run_id)
    rows = store.execute("SELECT step, data FROM generate_steps WHERE run_id=? AND step LIKE 'eval-%'",
                         (run_id,)).fetchall()
    found = {r["step"].removeprefix("eval-"): json.loads(r["data"])["run_id"] for r in rows}

    def order(phase: str) -> tuple[bool, int]:  # train-0, train-1, ..., train-10, then holdout
        return phase == "holdout", int(phase.removeprefix("train-")) if phase.startswith("train-") else 0

    return {phase: found[phase] for phase in sorted(found, key=order)}


def generate_step(store: Store, run_id: str, step: str) -> dict | None:
    """What one step of a generate run stored (source, cases, split, draft-N, write), if it ran."""
    return _Log(store, run_id).get(step)


def copy_generate_log(src: Store, dst: Store, run_id: str) -> None:
    """A generate run's teacher calls and step results, from one store into another (runs
    export / import); the calls keep their order. The run row itself is copied by Store.copy_run."""
    for store in (src, dst):
        _Log(store, run_id)  # creates the tables where they are missing
    for table, order in (("teacher_calls", "id"), ("generate_steps", "step")):
        for row in src.execute(f"SELECT * FROM {table} WHERE run_id=? ORDER BY {order}", (run_id,)).fetchall():
            data = {k: row[k] for k in row.keys() if k != "id"}
            dst.execute(f"INSERT INTO {table} ({','.join(data)}) VALUES ({','.join('?' * len(data))})",
                        tuple(data.values()))


# --- inputs ------------------------------------------------------------------------

def _load_tools(paths: list[Path]) -> list[dict[str, Any]]:
    """MCP tool schemas: one tool object, a list of them, or {"tools": [...]}."""
    tools: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: no such tool schema file (--tool)") from None
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: cannot read (--tool): {err}") from None
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
        items = data.get("tools", [data]) if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            raise UserError(f"{path}: expected a tool object, a list of tools, or {{\"tools\": [...]}}")
        for i, tool in enumerate(items):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"].strip():
                raise UserError(f"{path}: tool {i}: name: missing (an MCP tool has name, description, inputSchema)")
            schema = tool.get("inputSchema", tool.get("input_schema", tool.get("parameters")))
            if schema is not None and not isinstance(schema, dict):
                raise UserError(f"{path}: tool {tool['name']}: inputSchema: must be a JSON object")
            tools.append({"name": tool["name"], "description": tool.get("description", ""),
                          "inputSchema": schema or {}})
    return tools


def _tools_text(tools: list[dict[str, Any]]) -> str:
    if not tools:
        return ""
    return ("The skill must teach correct use of these MCP tools (name, purpose, input schema):\n"
            + "\n".join(json.dumps(t, ensure_ascii=False) for t in tools) + "\n\n")


def _teacher_context(opts: GenerateOptions, spec: ModelSpec) -> int:
    if opts.teacher_context:
        return opts.teacher_context
    return LOCAL_CONTEXT if spec.provider == "local" else DEFAULT_TEACHER_CONTEXT


def _read_source(opts: GenerateOptions, spec: ModelSpec) -> dict[str, Any]:
    """What --from gives: {"kind": none|skill|trace, ...}; UserError for anything unusable."""
    path = opts.from_path
    if path is None:
        return {"kind": "none"}
    if path.is_dir() or path.name.lower() == "skill.md":
        folder = path if path.is_dir() else path.parent
        if not (folder / SKILL_FILE).is_file():
            raise UserError(f"{path}: a folder without {SKILL_FILE} (give a skill folder or a trace file)")
        errors = [f for f in validate_skill(folder) if f.severity == "error"]
        if errors:
            raise UserError(f"{folder}: invalid skill: {errors[0].key}: {errors[0].reason} (--from)")
        skill = load_skill(folder)
        files = {SKILL_FILE: skill.text}
        for sub in ("references", "scripts", "assets"):
            for file in sorted((folder / sub).rglob("*")) if (folder / sub).is_dir() else []:
                if file.is_file():
                    try:
                        files[file.relative_to(folder).as_posix()] = file.read_text(encoding="utf-8")
                    except UnicodeDecodeError:
                        raise UserError(f"{file}: not UTF-8 text; generate keeps text files only") from None
        return {"kind": "skill", "path": str(folder.resolve()), "name": skill.name, "files": files}
    from harness.traces import load_trace

    record = load_trace(path)
    context = _teacher_context(opts, spec)
    budget = context - opts.teacher_max_tokens - PROMPT_OVERHEAD
    found = {"kind": "trace", "path": str(path), "format": record.format, "events": record.counts(),
             "redactions": record.redactions, "skipped_lines": record.skipped_lines,
             "estimated_tokens": record.estimated_tokens, "budget_tokens": budget}
    if record.estimated_tokens <= budget:
        return found | {"text": record.render()}
    # Too long for one prompt: the teacher summarises it piece by piece (run_generate), and the
    # summaries together must fit where the trace would have gone.
    limit = (f"the teacher's budget for a trace is {budget} tokens (context {context} - answer "
             f"{opts.teacher_max_tokens} - instructions {PROMPT_OVERHEAD}; raise --teacher-context)")
    if budget < MIN_CHUNK_TOKENS:
        raise UserError(f"{path}: the compacted trace is ~{record.estimated_tokens} tokens (chars/4) and "
                        f"{limit}, too small to summarise it in pieces of at least {MIN_CHUNK_TOKENS}")
    chunks = record.chunks(budget * CHARS_PER_TOKEN)
    if len(chunks) > MAX_TRACE_CHUNKS or budget // len(chunks) < MIN_SUMMARY_TOKENS:
        raise UserError(f"{path}: the compacted trace is ~{record.estimated_tokens} tokens (chars/4), "
                        f"{len(chunks)} pieces to summarise, more than this budget allows: {limit}; "
                        "shorten the trace")
    return found | {"text": None, "chunks": chunks, "summary_tokens": min(opts.teacher_max_tokens,
                                                                         budget // len(chunks))}


def _trace_summary(ctx: _Ctx) -> None:
    """Summarise a long trace in pieces, each call stored (steps trace-1..n); once per run."""
    source = ctx.steps.get("source") or {}
    if source.get("kind") != "trace" or source.get("text") is not None:
        return
    assert ctx.teacher is not None
    chunks = source["chunks"]
    parts = []
    for i, chunk in enumerate(chunks, 1):
        ctx.hooks.on_phase(f"teacher: summarising the trace, part {i} of {len(chunks)}")
        request = T.summary_request(ctx.opts.task, chunk=chunk, index=i, total=len(chunks),
                                    max_tokens=source["summary_tokens"], temperature=ctx.opts.teacher_temperature)
        summary = T.ask(ctx.teacher, request, log_=ctx.steps, step=f"trace-{i}", attempts=ctx.opts.teacher_attempts,
                        accept=T.accept_summary)
        parts.append(f"[part {i} of {len(chunks)}, summarised]\n{summary}")
    text = "\n\n".join(parts) + "\n"
    source["text"] = text
    source["summarised_in"] = len(chunks)
    ctx.steps.put("source", source)
    if T.estimate_tokens(text) > source["budget_tokens"]:
        raise UserError(f"{source['path']}: the summaries of the trace are ~{T.estimate_tokens(text)} tokens, "
                        f"still over the teacher's budget of {source['budget_tokens']}; shorten the trace")


def _source_context(source: dict[str, Any]) -> str:
    if source["kind"] == "trace":
        return ("Below is a compacted record of an expert agent doing this task (tool outputs truncated, "
                "secrets redacted). Distil what it learned, above all the errors it hit and how it fixed "
                f"them.\n<trace>\n{source['text']}</trace>\n\n")
    return ""


def split_cases(ids: list[str], *, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, holdout): sorted ids shuffled by `seed`; at least one case on each side."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    n_hold = min(max(1, round(len(order) * fraction)), len(order) - 1)
    return sorted(order[n_hold:]), sorted(order[:n_hold])


# --- the run -----------------------------------------------------------------------

def start_generate(opts: GenerateOptions, store: Store) -> str:
    """Check everything that can be wrong before any model call, then create the run."""
    if not opts.task.strip():
        raise UserError("TASK: empty (say what the skill should teach, e.g. \"build H100 kernels with kernel-builder\")")
    if opts.iterations < 0:
        raise UserError("--iterations must be 0 or more")
    if opts.runs < 1:
        raise UserError("--runs must be at least 1")
    if not 0 < opts.holdout_fraction < 1:
        raise UserError(f"--holdout-fraction {opts.holdout_fraction:g}: must be between 0 and 1 (exclusive)")
    if opts.max_skill_tokens < 50:
        raise UserError(f"--max-skill-tokens {opts.max_skill_tokens}: at least 50")
    if opts.teacher_attempts < 1:
        raise UserError("--teacher-attempts must be at least 1")
    if opts.n_cases < 2:
        raise UserError("--num-cases must be at least 2 (one to train on, one held out)")
    if not opts.students:
        raise UserError("give at least one --student (or --eval-model)")
    config = load_config()
    teacher_spec = resolve(opts.teacher, config, base_url=opts.teacher_base_url, api_key_env=opts.teacher_api_key_env)
    check_key(teacher_spec)
    student_specs = [resolve(m, config, base_url=opts.eval_base_url, api_key_env=opts.eval_api_key_env)
                     for m in opts.students]
    for spec in student_specs:
        check_key(spec)
    from harness.levels import resolve_level

    level = resolve_level(opts.level, opts.device)  # type: ignore[arg-type]
    tools = _load_tools(opts.tool_files)
    source = _read_source(opts, teacher_spec)
    cases: list[dict] = []
    if opts.cases_path is not None:
        loaded = load_cases(opts.cases_path)
        if len(loaded) < 2:
            raise UserError(f"{opts.cases_path}: {len(loaded)} case; at least 2 are needed (train and held-out)")
        cases = [c.model_dump(mode="json") for c in loaded]
    name = opts.name or (source.get("name") if source["kind"] == "skill" else None) or T.skill_name_for(opts.task)
    if not T.NAME_PATTERN.match(name) or len(name) > 64:
        raise UserError(f"--name {name!r}: lowercase letters, digits and single hyphens, at most 64 characters")
    skill_out = (opts.out_skills / name).resolve()
    if skill_out.exists() and str(skill_out) != source.get("path"):
        raise UserError(f"{opts.out_skills / name}: already exists (pass --name, --out-skills, or --from it to improve it)")
    env = environment(with_torch=any(c.get("kernel") for c in cases))
    record = opts.model_dump(mode="json") | {
        "name": name, "resolved_level": level, "teacher_resolved": teacher_spec.__dict__,
        "students_resolved": [s.__dict__ for s in student_specs],
        "skill_out": str(skill_out), "cases_out": str((opts.out_cases / f"{name}.json").resolve()),
        "cwd": os.getcwd()}
    run_id = store.create_run(kind="generate", config=record, env=env, skill=None, cases=cases)
    steps = _Log(store, run_id)
    steps.put("source", {k: v for k, v in source.items()} | {"tools": tools})
    if cases:
        steps.put("cases", {"cases": cases, "from": str(opts.cases_path)})
    return run_id


@dataclass
class _Ctx:
    run_id: str
    store: Store
    opts: GenerateOptions
    config: dict
    steps: _Log
    hooks: GenerateHooks
    teacher: ModelClient | None = None
    counter: Callable[[str], int] | None = None
    counter_name: str = "estimate"
    notes: list[str] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return artifacts_dir(self.run_id)


@contextlib.contextmanager
def _teacher_client(ctx: _Ctx) -> Iterator[None]:
    spec = ModelSpec(**ctx.config["teacher_resolved"])
    with contextlib.ExitStack() as stack:
        url = None
        if spec.provider == "local":
            from harness.models.local_server import local_endpoint

            url, _ = stack.enter_context(local_endpoint())
        ctx.teacher = make_client(spec, timeout_s=ctx.opts.timeout_s, attempts=ctx.opts.attempts,
                                  base_url_override=url)
        yield


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence fd 2 (C code writes there directly) for a moment; nothing else runs yet."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _token_counter(ctx: _Ctx) -> None:
    """The student's tokenizer where one is at hand (the embedded model's vocabulary,
    loaded without weights), else the documented chars/4 estimate."""
    students = [ModelSpec(**s) for s in ctx.config["students_resolved"]]
    if any(s.provider == "local" for s in students):
        try:
            import llama_cpp

            from harness.models.local_server import find_model_file

            with _quiet_stderr():  # llama.cpp prints a context warning even with verbose=False
                vocab = llama_cpp.Llama(model_path=str(find_model_file()), vocab_only=True, verbose=False)
            ctx.counter = lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=False))
            ctx.counter_name = "tokens, local student's tokenizer"
            return
        except Exception as err:  # no llama_cpp or model: the estimate, said in the report
            log.info("local tokenizer unavailable (%s); using the chars/4 estimate", err)
    ctx.counter, ctx.counter_name = T.estimate_tokens, "estimated tokens, chars/4"


def kernel_catalogue() -> dict[str, str]:
    """op -> API signature for reference ops a generated kernel case may name: ops with a
    kernels_reference/<op>/reference.py, signatures as the shipped case files spell them."""
    root = repo_root()
    ops = {p.parent.name for p in (root / "kernels_reference").glob("*/reference.py")}
    found: dict[str, str] = {}
    for path in sorted((root / "cases").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for case in data.get("cases", []) if isinstance(data, dict) else []:
            kernel = case.get("kernel") if isinstance(case, dict) else None
            if isinstance(kernel, dict) and kernel.get("op") in ops and isinstance(kernel.get("api"), str):
                found.setdefault(kernel["op"], kernel["api"])
    return dict(sorted(found.items()))


def _cases(ctx: _Ctx) -> list[Case]:
    data = ctx.steps.get("cases")
    if data is None:
        ctx.hooks.on_phase("teacher: writing test cases")
        source = ctx.steps.get("source") or {}
        ops = kernel_catalogue()
        request = T.cases_request(ctx.opts.task, n_cases=ctx.opts.n_cases, context=_source_context(source),
                                  kernel_ops=ops, max_tokens=ctx.opts.teacher_max_tokens,
                                  temperature=ctx.opts.teacher_temperature)
        assert ctx.teacher is not None
        cases = T.ask(ctx.teacher, request, log_=ctx.steps, step="cases", attempts=ctx.opts.teacher_attempts,
                      accept=lambda text: T.parse_cases_answer(text, known_ops=set(ops)))
        data = {"cases": cases, "from": "teacher"}
        ctx.steps.put("cases", data)
    return parse_cases(data["cases"], source=f"run {ctx.run_id} cases")


def _split(ctx: _Ctx, cases: list[Case]) -> dict[str, Any]:
    data = ctx.steps.get("split")
    if data is None:
        train, hold = split_cases([c.id for c in cases], fraction=ctx.opts.holdout_fraction, seed=ctx.opts.seed)
        data = {"seed": ctx.opts.seed, "fraction": ctx.opts.holdout_fraction, "train": train, "holdout": hold}
        ctx.steps.put("split", data)
    return data


def _draft_dir(ctx: _Ctx, index: int) -> Path:
    return ctx.work / "drafts" / f"iter-{index}" / ctx.config["name"]


def _accept_skill(ctx: _Ctx, index: int) -> Callable[[str], T.BuiltSkill]:
    def accept(text: str) -> T.BuiltSkill:
        files, notes = T.parse_skill_answer(text, name=ctx.config["name"], description=_description(ctx.opts.task))
        built = T.build_skill(files, _draft_dir(ctx, index), max_body_tokens=ctx.opts.max_skill_tokens,
                              counter=ctx.counter, counter_name=ctx.counter_name)
        built.warnings = notes + built.warnings
        return built

    return accept


def _description(task: str) -> str:
    text = " ".join(task.split())
    return f"Use for this task: {text}"[:1000]


def _draft(ctx: _Ctx, index: int, failures: list[dict] | None = None) -> dict[str, Any]:
    step = f"draft-{index}"
    data = ctx.steps.get(step)
    if data is not None and Path(data["path"]).is_dir():
        return data
    source = ctx.steps.get("source") or {}
    tools = _tools_text(source.get("tools", []))
    if index == 0 and source.get("kind") == "skill":
        # The skill being improved is iteration 0, unchanged (but for a --name): the refinements must beat it.
        files = dict(source["files"])
        notes: list[str] = []
        try:
            files[SKILL_FILE] = T.ensure_frontmatter(files[SKILL_FILE], name=ctx.config["name"],
                                                    description=_description(ctx.opts.task), notes=notes)
            built = T.build_skill(files, _draft_dir(ctx, 0), max_body_tokens=10**9,
                                  counter=ctx.counter, counter_name=ctx.counter_name)
        except T.TeacherAnswerError as err:
            raise UserError(f"{source['path']}: {err} (--from)") from None
        if built.body_tokens > ctx.opts.max_skill_tokens:
            ctx.notes.append(f"the --from skill's body is {built.body_tokens} tokens, over --max-skill-tokens "
                             f"{ctx.opts.max_skill_tokens}; refinements must fit the budget")
        built.warnings = ["the --from skill, unchanged", *notes, *built.warnings]
    else:
        assert ctx.teacher is not None
        if index == 0:
            ctx.hooks.on_phase("teacher: writing the skill")
            request = T.skill_request(ctx.opts.task, name=ctx.config["name"], max_skill_tokens=ctx.opts.max_skill_tokens,
                                      context=_source_context(source), tools=tools,
                                      max_tokens=ctx.opts.teacher_max_tokens, temperature=ctx.opts.teacher_temperature)
        else:
            ctx.hooks.on_phase(f"teacher: refining the skill (iteration {index})")
            previous = ctx.steps.get(f"draft-{index - 1}") or {}
            request = T.refine_request(ctx.opts.task, name=ctx.config["name"], files=previous["files"],
                                       failures=failures or [], max_skill_tokens=ctx.opts.max_skill_tokens,
                                       tools=tools, max_tokens=ctx.opts.teacher_max_tokens,
                                       temperature=ctx.opts.teacher_temperature)
        built = T.ask(ctx.teacher, request, log_=ctx.steps, step=step, attempts=ctx.opts.teacher_attempts,
                      accept=_accept_skill(ctx, index))
    data = built.model_dump(mode="json")
    ctx.steps.put(step, data)
    return data


def _eval_run(ctx: _Ctx, phase: str, skill_dir: Path, cases: list[Case], arms: tuple[str, ...]) -> str:
    """An ordinary eval run over `cases` (some arms only), executed by evaluate.execute."""
    existing = ctx.steps.get(f"eval-{phase}")
    if existing is None:
        cases_file = ctx.work / f"cases-{phase}.json"
        cases_file.write_text(json.dumps({"cases": [c.model_dump(mode="json") for c in cases]}, indent=1))
        opts = EvalOptions(skill_dir=skill_dir, cases_path=cases_file, models=ctx.opts.students,
                           base_url=ctx.opts.eval_base_url, api_key_env=ctx.opts.eval_api_key_env,
                           **ctx.opts.student_settings())
        record = opts.model_dump(mode="json") | {
            "resolved_level": ctx.config["resolved_level"], "models_resolved": ctx.config["students_resolved"],
            "generate_run": ctx.run_id, "phase": phase, "arms": list(arms)}
        env = environment(with_torch=any(c.kernel for c in cases))
        run_id = ctx.store.create_run(kind="eval", config=record, env=env,
                                      skill=skill_record(skill_dir), cases=[c.model_dump(mode="json") for c in cases])
        ctx.store.add_trials(run_id, [(c.id, m, arm, i) for i in range(ctx.opts.runs) for m in ctx.opts.students
                                      for arm in arms for c in cases])
        ctx.steps.put(f"eval-{phase}", {"run_id": run_id})
    else:
        run_id = existing["run_id"]
    todo = [t for t in ctx.store.trials(run_id) if t.status != "answered" or t.grade is None]
    if todo:
        ctx.hooks.on_phase(f"students: {phase}")
        with ctx.hooks.eval_progress(phase) as progress:
            status = execute(run_id, ctx.store, progress)
        if status != "finished":
            raise StudentCallsFailed(f"eval run {run_id} ({phase}) stopped: {status}")
    errors = [t for t in ctx.store.trials(run_id) if t.status == "error"]
    if errors:
        raise StudentCallsFailed(f"{len(errors)} student call(s) failed in {phase} (first: {errors[0].error}); "
                                 f"eval run {run_id}")
    return run_id


def _pass_rates(ctx: _Ctx, run_id: str, arm: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    trials = ctx.store.trials(run_id)
    for model in ctx.opts.students:
        verdicts = [t.grade["score"]["verdict"] for t in trials
                    if t.model == model and t.arm == arm and t.grade]
        done = [v for v in verdicts if v in ("pass", "fail")]
        out[model] = (sum(v == "pass" for v in done) / len(done)) if done else None
    return out


def _failures(ctx: _Ctx, run_id: str) -> list[dict[str, Any]]:
    """With-skill failures on train, for the teacher: input, expected, why, answer (clipped)."""
    trials = ctx.store.trials(run_id)
    run = ctx.store.get_run(run_id)
    cases = {c["id"]: c for c in run.cases}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for t in trials:
        if t.arm != "with_skill" or not t.grade or t.grade["score"]["verdict"] != "fail" or t.case_id in seen:
            continue
        seen.add(t.case_id)  # one failing answer per case keeps the prompt small
        case = cases[t.case_id]
        failing = [f"{r['name']}: {r['reason']}" for r in t.grade.get("results", []) if r.get("status") == "fail"]
        answer = (t.completion or {}).get("text", "")
        out.append({"case_id": t.case_id, "input": case["input"], "expected": case.get("expected", {}),
                    "why": "; ".join(failing) or t.grade["score"].get("reason", ""),
                    "answer": answer if len(answer) <= ANSWER_CLIP else answer[:ANSWER_CLIP] + " [...]"})
    return out


def _mean(values: list[float | None]) -> float:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("-inf")  # a sort key: unmeasured ranks last


def _verdicts(ctx: _Ctx, holdout_run: str, block_tokens: int) -> list[ModelVerdict]:
    from harness.report.summary import summarize
    from harness.runview import report_run

    summary = summarize(report_run(ctx.store, holdout_run))
    out = []
    for line in summary.lifts:
        per_1k = line.lift / block_tokens * 1000 if line.lift is not None and block_tokens else None
        interval = (f", 95% CI [{line.lift_lo:+.2f}, {line.lift_hi:+.2f}]"
                    if line.lift_lo is not None and line.lift_hi is not None else "")
        figures = (f"held-out pass {line.pass_baseline:.0%} -> {line.pass_with:.0%} ({line.lift:+.2f}{interval}; "
                   f"McNemar p={line.p_value:.3g}, {line.b}+{line.c} discordant of {line.pairs} pairs)"
                   if line.lift is not None and line.pass_baseline is not None and line.pass_with is not None
                   else f"no completed held-out pairs ({line.pairs})")
        if line.verdict == "helps":
            use, statement = True, f"the skill helps {line.model}: {figures}."
        elif line.verdict == "hurts":
            use, statement = False, (f"the skill HURTS {line.model}: {figures}. Do not use it with {line.model}.")
        elif line.verdict == "not enough runs":
            use, statement = False, (f"the skill is NOT shown to help {line.model}: {figures}; too few discordant "
                                     f"pairs to tell (add held-out cases or --runs). Do not use it with "
                                     f"{line.model} on this evidence.")
        else:
            use, statement = False, (f"the skill does NOT help {line.model} measurably: {figures}. "
                                     f"Do not use it with {line.model}.")
        base, with_ = summary.arm(line.model, "baseline"), summary.arm(line.model, "with_skill")
        out.append(ModelVerdict(**line.model_dump(), tokens_baseline=base.avg_total_tokens if base else None,
                                tokens_with=with_.avg_total_tokens if with_ else None,
                                lift_per_1k_tokens=per_1k, use=use, statement=statement))
    return out


def _write_outputs(ctx: _Ctx, draft: dict[str, Any], cases: list[Case], split: dict[str, Any]) -> tuple[str, str]:
    """skills/NAME/ and cases/NAME.json, each built aside and renamed into place."""
    data = ctx.steps.get("write")
    if data is not None:
        return data["skill_path"], data["cases_path"]
    skill_out = Path(ctx.config["skill_out"])
    cases_out = Path(ctx.config["cases_out"])
    # Temporary folders / files of a write that was killed midway (ours by their names).
    for stale in [*skill_out.parent.glob(f".{skill_out.name}.tmp-*"), *cases_out.parent.glob(f".{cases_out.name}.*")]:
        log.info("removing %s, left by an interrupted write", stale)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    T.build_skill(draft["files"], skill_out, max_body_tokens=10**9)  # validated again where it lands
    cases_out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"cases": [c.model_dump(mode="json", exclude_defaults=True) | {"id": c.id} for c in cases],
               "split": {"seed": split["seed"], "holdout_fraction": split["fraction"], "holdout": split["holdout"],
                         "note": "held-out ids were never shown to the teacher; kernelgrade generate run "
                                 + ctx.run_id}}
    fd, tmp = tempfile.mkstemp(prefix=f".{cases_out.name}.", dir=cases_out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, cases_out)
    # The generate run row names the skill it produced, as an eval run names the one it used.
    ctx.store.execute("UPDATE runs SET skill=? WHERE id=?", (json.dumps(skill_record(skill_out)), ctx.run_id))
    ctx.steps.put("write", {"skill_path": str(skill_out), "cases_path": str(cases_out)})
    return str(skill_out), str(cases_out)


def run_generate(run_id: str, store: Store, hooks: GenerateHooks | None = None) -> GenerateResult:
    """Do (or finish) every step of a generate run; safe to call again after an interruption."""
    run = store.get_run(run_id)
    if run.kind != "generate":
        raise UserError(f"run {run.id}: a {run.kind} run, not a generate run (use kernelgrade eval --resume)")
    opts = GenerateOptions.model_validate({k: v for k, v in run.config.items() if k in GenerateOptions.model_fields})
    # Relative output paths are relative to where the run was started.
    ctx = _Ctx(run_id=run.id, store=store, opts=opts, config=run.config, steps=_Log(store, run.id),
               hooks=hooks or GenerateHooks())
    store.set_run_status(run.id, "running")
    try:
        result = _run(ctx)
    except BaseException:
        store.set_run_status(run.id, "interrupted")
        raise
    store.set_run_status(run.id, "finished")
    return result


def _run(ctx: _Ctx) -> GenerateResult:
    _token_counter(ctx)
    opts = ctx.opts
    with _teacher_client(ctx):
        _trace_summary(ctx)
        cases = _cases(ctx)
        split = _split(ctx, cases)
        by_id = {c.id: c for c in cases}
        train = [by_id[i] for i in split["train"]]
        holdout = [by_id[i] for i in split["holdout"]]
        iterations: list[IterationResult] = []
        draft = _draft(ctx, 0)
        baseline: dict[str, float | None] = {}
        for i in range(opts.iterations + 1):
            arms = ARMS if i == 0 else ("with_skill",)
            train_run = _eval_run(ctx, f"train-{i}", Path(draft["path"]), train, arms)
            if i == 0:
                baseline = _pass_rates(ctx, train_run, "baseline")
            failures = _failures(ctx, train_run)
            iterations.append(IterationResult(
                index=i, skill_sha256=draft["sha256"], body_tokens=draft["body_tokens"],
                block_tokens=draft["block_tokens"], train_run_id=train_run,
                train_pass_with=_pass_rates(ctx, train_run, "with_skill"), train_failures=len(failures),
                notes=draft.get("warnings", [])))
            if i == opts.iterations:
                break
            if not failures:
                ctx.notes.append(f"no with-skill failures on train after iteration {i}: refinement stopped")
                break
            draft = _draft(ctx, i + 1, failures)
    pairs = len(holdout) * opts.runs
    if pairs < MIN_DISCORDANT:
        ctx.notes.append(f"only {pairs} held-out pair(s) per student ({len(holdout)} case(s) x {opts.runs} run(s)): "
                         f"the paired test needs at least {MIN_DISCORDANT} discordant pairs to show an effect; "
                         "add cases, --holdout-fraction or --runs")
    # Best on train (never on held-out): highest mean with-skill pass rate, then fewer tokens, then earlier.
    in_budget = [it for it in iterations if it.body_tokens <= opts.max_skill_tokens] or iterations
    best = max(in_budget, key=lambda it: (_mean(list(it.train_pass_with.values())), -it.block_tokens, -it.index))
    chosen = ctx.steps.get(f"draft-{best.index}")
    assert chosen is not None
    holdout_run = _eval_run(ctx, "holdout", Path(chosen["path"]), holdout, ARMS)
    verdicts = _verdicts(ctx, holdout_run, chosen["block_tokens"])
    skill_path, cases_path = _write_outputs(ctx, chosen, cases, split)
    source = ctx.steps.get("source") or {}
    shown_source = {k: v for k, v in source.items() if k not in ("text", "files", "chunks")}
    if not any(v.use for v in verdicts):
        ctx.notes.append("the skill was saved so it can be inspected or improved (--from), but the held-out "
                         "evidence does not support using it")
    return GenerateResult(
        run_id=ctx.run_id, status="finished", task=opts.task, name=ctx.config["name"], teacher=opts.teacher,
        students=opts.students, skill_path=skill_path, cases_path=cases_path, source=shown_source, split=split,
        iterations=iterations, chosen_iteration=best.index, train_baseline=baseline, holdout_run_id=holdout_run,
        skill_body_tokens=chosen["body_tokens"], skill_block_tokens=chosen["block_tokens"],
        token_method=chosen["token_method"], verdicts=verdicts, teacher_calls=ctx.steps.call_counts(),
        notes=ctx.notes)

