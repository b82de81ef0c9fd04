"""`generate`: a teacher writes a skill (and cases); the harness proves whether it helps.

The loop (issues 9 and 11), every step stored so a run resumes where it stopped:

1. source   --from: an existing skill folder (improved), or a trace compacted by
            harness.workflows.traces; --tool MCP schemas. Nothing here calls a model.
2. cases    --cases, else the teacher (or --test-gen-model) writes them (its call stored before
            parsing; harness.workflows.generate_cases).
3. split    a seeded split into train and held-out; held-out cases are never shown
            to the teacher and never used to pick a skill.
4. draft-0  the teacher's first skill (or the --from skill as it is).
5. train-i  baseline (i = 0 only) and with-skill on train: an eval run per iteration,
            created here and executed by harness.workflows.evaluate.execute (one executor).
6. draft-i+1 the teacher rewrites the skill from the with-skill failures on train;
            up to --iterations times; the best iteration on train is kept.
7. holdout  baseline vs the kept skill on held-out cases only: the figures reported.
8. write    skills/NAME/ (with skill_meta.json, as upskill writes it) and cases/NAME.json
            (harness.workflows.generate_write).

--no-eval (upskill's flag) does 1, 4 and 8 only: skills/NAME/ is written, no case file, nothing measured.
-e examples (upskill's) go into the teacher's requests; they are stored with the options.

Storage: the generate run is a `runs` row of kind "generate"; its eval runs are
ordinary eval runs (re-scorable with `rescore`), linked by config "generate_run".
Teacher calls and step results live in two tables of their own (harness/workflows/generate_log.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.common.config import load_config
from harness.common.errors import UserError
from harness.inputs.cases import Case, load_cases
from harness.inputs.skills import SKILL_FILE
from harness.models.registry import ModelSpec, check_key, resolve
from harness.report.stats import MIN_DISCORDANT
from harness.store.db import Store
from harness.store.provenance import environment
from harness.workflows import teacher as T
from harness.workflows.agent_eval import check_agent_options, check_tool_support, mode_fields
from harness.workflows.evaluate import ARMS, EvalOptions, execute, skill_record
from harness.workflows.generate_cases import generate_cases, model_client
from harness.workflows.generate_context import GenerateContext
from harness.workflows.generate_judge import (
    holdout_verdicts,
    mean_rate,
    pass_rates,
    train_failures,
)
from harness.workflows.generate_log import (
    GenerateLog,
)
from harness.workflows.generate_write import write_outputs, write_skill_only
from harness.workflows.generate_options import (
    GenerateHooks,
    GenerateOptions,
    GenerateResult,
    IterationResult,
    StudentCallsFailed,
)
from harness.workflows.generate_sources import (
    load_tools,
    read_source,
    source_context,
    split_cases,
    tools_text,
    trace_summary,
)

log = logging.getLogger(__name__)

__all__ = ["run_generate", "start_generate"]



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
    # --no-eval: no student is called, so none needs a key; cases are written only when none are given.
    student_specs = [] if opts.no_eval else [
        resolve(m, config, base_url=opts.eval_base_url, api_key_env=opts.eval_api_key_env) for m in opts.students]
    test_gen_spec = None
    if opts.test_gen_model and not opts.no_eval and opts.cases_path is None:
        test_gen_spec = resolve(opts.test_gen_model, config, base_url=opts.teacher_base_url,
                                api_key_env=opts.teacher_api_key_env)
    for spec in [*student_specs, *([test_gen_spec] if test_gen_spec else [])]:
        check_key(spec)
    if opts.agent and not opts.no_eval:  # refused here, before the teacher is called, not in a student phase
        check_agent_options(opts, [])
        check_tool_support(student_specs, timeout_s=opts.timeout_s)
    from harness.checks.levels import resolve_level

    level = resolve_level(opts.level, opts.device)  # type: ignore[arg-type]
    tools = load_tools(opts.tool_files)
    source = read_source(opts, teacher_spec)
    cases: list[dict] = []
    if opts.cases_path is not None and not opts.no_eval:
        loaded = load_cases(opts.cases_path)
        if len(loaded) < 2:
            raise UserError(f"{opts.cases_path}: {len(loaded)} case; at least 2 are needed (train and held-out)")
        cases = [c.model_dump(mode="json") for c in loaded]
    if opts.no_eval and source["kind"] == "skill":
        raise UserError("--no-eval with --from SKILL_DIR: kernelgrade improves a skill only from the failures it "
                        "measures, so there would be nothing to change (drop --no-eval)")
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
        "test_gen_resolved": test_gen_spec.__dict__ if test_gen_spec else None,
        "skill_out": str(skill_out), "cases_out": str((opts.out_cases / f"{name}.json").resolve()),
        "cwd": os.getcwd()}
    run_id = store.create_run(kind="generate", config=record, env=env, skill=None, cases=cases)
    steps = GenerateLog(store, run_id)
    steps.put("source", {k: v for k, v in source.items()} | {"tools": tools})
    if cases:
        steps.put("cases", {"cases": cases, "from": str(opts.cases_path)})
    return run_id


@contextlib.contextmanager
def _teacher_client(ctx: GenerateContext) -> Iterator[None]:
    """The teacher's client and, with --test-gen-model, the case writer's (one client when they are the same)."""
    spec = ModelSpec(**ctx.config["teacher_resolved"])
    gen = ctx.config.get("test_gen_resolved")
    with contextlib.ExitStack() as stack:
        ctx.teacher = stack.enter_context(model_client(spec, timeout_s=ctx.opts.timeout_s, attempts=ctx.opts.attempts))
        if gen is not None:
            ctx.case_writer = ctx.teacher if ModelSpec(**gen) == spec else stack.enter_context(
                model_client(ModelSpec(**gen), timeout_s=ctx.opts.timeout_s, attempts=ctx.opts.attempts))
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


def _token_counter(ctx: GenerateContext) -> None:
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


def _split(ctx: GenerateContext, cases: list[Case]) -> dict[str, Any]:
    data = ctx.steps.get("split")
    if data is None:
        train, hold = split_cases([c.id for c in cases], fraction=ctx.opts.holdout_fraction, seed=ctx.opts.seed)
        data = {"seed": ctx.opts.seed, "fraction": ctx.opts.holdout_fraction, "train": train, "holdout": hold}
        ctx.steps.put("split", data)
    return data


def _draft_dir(ctx: GenerateContext, index: int) -> Path:
    return ctx.work / "drafts" / f"iter-{index}" / ctx.config["name"]


def _accept_skill(ctx: GenerateContext, index: int) -> Callable[[str], T.BuiltSkill]:
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


def _draft(ctx: GenerateContext, index: int, failures: list[dict] | None = None) -> dict[str, Any]:
    step = f"draft-{index}"
    data = ctx.steps.get(step)
    if data is not None and Path(data["path"]).is_dir():
        return data
    source = ctx.steps.get("source") or {}
    tools = tools_text(source.get("tools", []))
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
                                      context=source_context(source), tools=tools, examples=ctx.opts.examples,
                                      max_tokens=ctx.opts.teacher_max_tokens, temperature=ctx.opts.teacher_temperature)
        else:
            ctx.hooks.on_phase(f"teacher: refining the skill (iteration {index})")
            previous = ctx.steps.get(f"draft-{index - 1}") or {}
            request = T.refine_request(ctx.opts.task, name=ctx.config["name"], files=previous["files"],
                                       failures=failures or [], max_skill_tokens=ctx.opts.max_skill_tokens,
                                       tools=tools, examples=ctx.opts.examples,
                                       max_tokens=ctx.opts.teacher_max_tokens,
                                       temperature=ctx.opts.teacher_temperature)
        built = T.ask(ctx.teacher, request, log_=ctx.steps, step=step, attempts=ctx.opts.teacher_attempts,
                      accept=_accept_skill(ctx, index))
    data = built.model_dump(mode="json")
    ctx.steps.put(step, data)
    return data


def _eval_run(ctx: GenerateContext, phase: str, skill_dir: Path, cases: list[Case], arms: tuple[str, ...]) -> str:
    """An ordinary eval run over `cases` (some arms only), executed by evaluate.execute."""
    existing = ctx.steps.get(f"eval-{phase}")
    if existing is None:
        cases_file = ctx.work / f"cases-{phase}.json"
        cases_file.write_text(json.dumps({"cases": [c.model_dump(mode="json") for c in cases]}, indent=1))
        opts = EvalOptions(skill_dir=skill_dir, cases_path=cases_file, models=ctx.opts.students,
                           base_url=ctx.opts.eval_base_url, api_key_env=ctx.opts.eval_api_key_env,
                           **ctx.opts.student_settings())
        mode, skill_fields = mode_fields(opts, skill_dir)  # --agent reaches the student phases
        record = opts.model_dump(mode="json") | mode | {
            "resolved_level": ctx.config["resolved_level"], "models_resolved": ctx.config["students_resolved"],
            "generate_run": ctx.run_id, "phase": phase, "arms": list(arms)}
        env = environment(with_torch=any(c.kernel for c in cases))
        run_id = ctx.store.create_run(kind="eval", config=record, env=env, skill=skill_record(skill_dir) | skill_fields,
                                      cases=[c.model_dump(mode="json") for c in cases])
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


def run_generate(run_id: str, store: Store, hooks: GenerateHooks | None = None) -> GenerateResult:
    """Do (or finish) every step of a generate run; safe to call again after an interruption."""
    run = store.get_run(run_id)
    if run.kind != "generate":
        raise UserError(f"run {run.id}: a {run.kind} run, not a generate run (use kernelgrade eval --resume)")
    opts = GenerateOptions.model_validate({k: v for k, v in run.config.items() if k in GenerateOptions.model_fields})
    # Relative output paths are relative to where the run was started.
    ctx = GenerateContext(run_id=run.id, store=store, opts=opts, config=run.config, steps=GenerateLog(store, run.id),
               hooks=hooks or GenerateHooks())
    store.set_run_status(run.id, "running")
    try:
        result = _run(ctx)
    except BaseException:
        store.set_run_status(run.id, "interrupted")
        raise
    store.set_run_status(run.id, "finished")
    return result


def _run(ctx: GenerateContext) -> GenerateResult:
    _token_counter(ctx)
    opts = ctx.opts
    with _teacher_client(ctx):
        trace_summary(ctx)
        if opts.no_eval:
            return _skill_only(ctx, _draft(ctx, 0))
        cases = generate_cases(ctx)
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
                baseline = pass_rates(ctx, train_run, "baseline")
            failures = train_failures(ctx, train_run)
            iterations.append(IterationResult(
                index=i, skill_sha256=draft["sha256"], body_tokens=draft["body_tokens"],
                block_tokens=draft["block_tokens"], train_run_id=train_run,
                train_pass_with=pass_rates(ctx, train_run, "with_skill"), train_failures=len(failures),
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
    best = max(in_budget, key=lambda it: (mean_rate(list(it.train_pass_with.values())), -it.block_tokens, -it.index))
    chosen = ctx.steps.get(f"draft-{best.index}")
    assert chosen is not None
    holdout_run = _eval_run(ctx, "holdout", Path(chosen["path"]), holdout, ARMS)
    verdicts = holdout_verdicts(ctx, holdout_run, chosen["block_tokens"])
    skill_path, cases_path = write_outputs(ctx, chosen, cases, split, verdicts)
    if not any(v.use for v in verdicts):
        ctx.notes.append("the skill was saved so it can be inspected or improved (--from), but the held-out "
                         "evidence does not support using it")
    return GenerateResult(
        run_id=ctx.run_id, status="finished", task=opts.task, name=ctx.config["name"], teacher=opts.teacher,
        students=opts.students, skill_path=skill_path, cases_path=cases_path, source=_shown_source(ctx), split=split,
        iterations=iterations, chosen_iteration=best.index, train_baseline=baseline, holdout_run_id=holdout_run,
        skill_body_tokens=chosen["body_tokens"], skill_block_tokens=chosen["block_tokens"],
        token_method=chosen["token_method"], verdicts=verdicts, teacher_calls=ctx.steps.call_counts(),
        notes=ctx.notes)



def _shown_source(ctx: GenerateContext) -> dict[str, Any]:
    source = ctx.steps.get("source") or {}
    return {k: v for k, v in source.items() if k not in ("text", "files", "chunks")}


def _skill_only(ctx: GenerateContext, draft: dict[str, Any]) -> GenerateResult:
    """--no-eval (upskill's flag): the teacher's skill is saved; no cases, no student, no refinement."""
    opts = ctx.opts
    skill_path = write_skill_only(ctx, draft)
    ctx.notes.append("evaluation skipped (--no-eval): no cases were written and no student was called, so "
                     "nothing says whether this skill helps; run kernelgrade eval on it to find out")
    ctx.notes += [f"{flag} not used (--no-eval)" for flag, given in
                  (("--cases", opts.cases_path), ("--test-gen-model", opts.test_gen_model)) if given]
    return GenerateResult(
        run_id=ctx.run_id, status="finished", task=opts.task, name=ctx.config["name"], teacher=opts.teacher,
        students=[], skill_path=skill_path, cases_path=None, source=_shown_source(ctx), split={}, iterations=[],
        chosen_iteration=None, train_baseline={}, holdout_run_id=None, skill_body_tokens=draft["body_tokens"],
        skill_block_tokens=draft["block_tokens"], token_method=draft["token_method"], verdicts=[],
        teacher_calls=ctx.steps.call_counts(), notes=ctx.notes, evaluated=False)
