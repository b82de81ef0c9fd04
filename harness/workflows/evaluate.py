"""The eval workflow: cases x models x arms x runs, stored before graded, resumable.

Library first: the CLI (harness/cli/eval.py) only parses options and renders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from pydantic import BaseModel

from harness.checks import GradeOptions
from harness.common.config import Config, load_config
from harness.common.errors import UserError
from harness.common.paths import artifacts_dir
from harness.inputs.cases import Case, load_cases, parse_cases
from harness.models.base import Completion, ModelCallError, ModelClient
from harness.models.caching import cached_request
from harness.models.registry import ModelSpec, check_key, make_client, resolve
from harness.prompts.build import build_prompt
from harness.scoring.grade import grade_answer
from harness.store.db import Store, TrialRecord, now
from harness.store.provenance import environment, kernelgrade_version
from harness.workflows.agent_eval import (check_agent_options, check_tool_support, do_agent_trial, mode_fields,
                                          rescore_agent_trial, run_mode)

if TYPE_CHECKING:
    from harness.executors import ExecutorSettings

log = logging.getLogger(__name__)

ARMS = ("baseline", "with_skill")


class StudentSettings(BaseModel):
    """How the evaluated models are called and their answers graded: shared by `eval` and
    by `generate`, whose student phases are eval runs."""

    runs: int = 1
    concurrency: int = 4
    max_tokens: int = 4096
    temperature: float | None = 1.0
    level: str = "auto"
    device: str = "cuda"
    sandbox: str = "auto"
    timeout_s: float = 300.0
    attempts: int = 5
    prompt_cache: bool = True
    """Ask for the providers' prompt caches (--no-prompt-cache: off); it changes no prompt text."""
    call_processes: int | None = None
    """One-shot: worker processes making the model calls (harness/models/call_pool.py); 0: this
    process; None: auto (none below concurrency 32). It changes no request."""
    agent: bool = False
    """Agent mode (issue 17): the student works through tools over several turns."""
    max_turns: int = 12
    """Agent mode: model calls per trial (a case's own max_turns wins)."""
    max_trial_tokens: int | None = None
    """Agent mode: input plus output tokens per trial, over all its calls; None: no budget."""
    skill_delivery: str | None = None
    """Agent mode: inline (the block in the first message) or on-demand (the default: name and
    description in the system prompt, files under skill/). One-shot is always inline."""
    answer_format: str = "kernel-builder"
    """kernel-builder (fenced project files) or kernelbench (a ModelNew with load_inline,
    adapted to a project before grading; imported KernelBench cases, one-shot only)."""

    def student_settings(self) -> dict:
        return self.model_dump(include=set(StudentSettings.model_fields))


class EvalOptions(StudentSettings):
    skill_dir: Path
    cases_path: Path
    models: list[str]
    base_url: str | None = None
    api_key_env: str | None = None
    max_cost: float | None = None
    batch: bool = False
    """Through the provider's batch API (harness/workflows/batch_eval.py); the run's mode is batch."""
    no_baseline: bool = False
    """upskill's --no-baseline: the with-skill arm only (no lift is reported)."""


@dataclass
class Progress:
    """Callbacks for the CLI's progress bar; the library never prints."""

    on_start: Callable[[int], None] = lambda total: None
    on_trial: Callable[[TrialRecord, str], None] = lambda trial, outcome: None
    on_stop: Callable[[str], None] = lambda reason: None
    """Called once when the run stops early (--max-cost), with why."""
    on_status: Callable[[str], None] = lambda line: None
    """The executor's nodes and tasks in flight, refreshed while grading (harness.workflows.scale)."""
    on_note: Callable[[str], None] = lambda line: None
    """A line worth showing once: the executor's nodes, those left out and why."""


@dataclass
class _RunState:
    cost: float = 0.0
    stop_reason: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    artifacts: Path | None = None
    """The run's artifact folder, worked out once (data_dir() makes its folder on every call)."""


def skill_record(skill_dir: Path) -> dict:
    from harness.inputs.skills import load_skill, validate_skill

    errors = [f for f in validate_skill(skill_dir) if f.severity == "error"]
    if errors:
        first = errors[0]
        raise UserError(f"{skill_dir}: invalid skill: {first.key}: {first.reason}"
                        + (f" (+{len(errors) - 1} more; run kernelgrade validate)" if len(errors) > 1 else ""))
    from harness.inputs.skill_meta import read_skill_meta

    skill = load_skill(skill_dir)
    block = skill.prompt_block()
    meta = read_skill_meta(skill_dir)  # upskill's skill_meta.json: where the skill came from
    return {"name": skill.name, "description": skill.description, "path": str(skill_dir), "sha256": skill.sha256,
            "block": block, "chars": len(block), "estimated_tokens": skill.estimated_tokens,
            **({"meta": meta.metadata.model_dump(mode="json")} if meta is not None else {})}


@contextlib.contextmanager
def _endpoints(specs: list[ModelSpec], *, agent: bool = False,
               prompt_cache: bool = True) -> Iterator[dict[str, ModelSpec]]:
    """Start the embedded local server when a `local` model is asked for; stop it after.

    Yields each model's spec as it will be called: `local` becomes an OpenAI-compatible
    endpoint with the server's URL and the served model's real id (the server echoes any
    id back, so the stored completion would otherwise just say "local")."""
    live = {s.name: s for s in specs}
    with contextlib.ExitStack() as stack:
        if any(s.provider == "local" for s in specs):
            from harness.models.local_server import TOOL_CHAT_FORMAT, local_endpoint

            # A tool-calling chat format in agent mode only: one-shot prompts stay byte-identical.
            base_url, model_id = stack.enter_context(local_endpoint(chat_format=TOOL_CHAT_FORMAT if agent else None,
                                                                    prompt_cache=prompt_cache))
            for s in specs:
                if s.provider == "local":
                    live[s.name] = dataclasses.replace(s, model_id=model_id, base_url=base_url)
        yield live


def _clients(live: dict[str, ModelSpec], opts: EvalOptions) -> dict[str, ModelClient]:
    if opts.agent:
        from harness.agent.providers import make_agent_client

        return {name: make_agent_client(spec, timeout_s=opts.timeout_s, attempts=opts.attempts)  # type: ignore[misc]
                for name, spec in live.items()}
    clients = {name: make_client(spec, timeout_s=opts.timeout_s, attempts=opts.attempts)
               for name, spec in live.items()}
    return _pooled(clients, live, opts)


def _pooled(clients: dict[str, ModelClient], live: dict[str, ModelSpec], opts: EvalOptions) -> dict[str, ModelClient]:
    """The one-shot calls in worker processes where this process's GIL would be the limit.
    The embedded server answers one call at a time, so its calls stay here."""
    from harness.models.call_pool import PooledClient, auto_processes, shared_pool

    n = opts.call_processes if opts.call_processes is not None else auto_processes(opts.concurrency)
    pooled = [name for name, spec in live.items() if spec.provider != "local"]
    if n < 1 or not pooled:
        return clients
    pool = shared_pool(n)
    return {**clients, **{name: PooledClient(pool, clients[name], live[name], timeout_s=opts.timeout_s,
                                             attempts=opts.attempts) for name in pooled}}


def start_eval(opts: EvalOptions, store: Store) -> str:
    """Validate everything that can be wrong before any model call, then create the run."""
    config = load_config()
    cases = load_cases(opts.cases_path)
    skill = skill_record(opts.skill_dir)
    if opts.runs < 1:
        raise UserError("--runs must be at least 1")
    if opts.concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    if opts.call_processes is not None and opts.call_processes < 0:
        raise UserError("--call-processes must be 0 (calls in this process) or more")
    check_agent_options(opts, cases)
    specs = [resolve(m, config, base_url=opts.base_url, api_key_env=opts.api_key_env) for m in opts.models]
    for spec in specs:
        check_key(spec)
    from harness.checks.levels import resolve_level

    level = resolve_level(opts.level, opts.device)  # type: ignore[arg-type]
    if opts.agent:
        check_tool_support(specs, timeout_s=opts.timeout_s)
    mode, skill_fields = mode_fields(opts, opts.skill_dir)
    skill |= skill_fields
    if opts.batch:
        from harness.workflows.batch_eval import check_batch_options

        check_batch_options(opts, specs)
        mode = {"mode": "batch"}
    env = environment(with_torch=any(c.kernel for c in cases))
    config_record = opts.model_dump(mode="json") | mode | {"resolved_level": level,
                                                           "models_resolved": [s.__dict__ for s in specs]}
    run_id = store.create_run(kind="eval", config=config_record, env=env, skill=skill,
                              cases=[c.model_dump(mode="json") for c in cases])
    # Run-index major, then arm: a partial run still has both arms of every finished
    # index, and consecutive with-skill prompts share the skill prefix (prompt caches).
    arms = ("with_skill",) if opts.no_baseline else ARMS
    store.add_trials(run_id, [(c.id, s.name, arm, i) for i in range(opts.runs)
                              for s in specs for arm in arms for c in cases])
    return run_id


def _grade_and_store(store: Store, trial: TrialRecord, case: Case, text: str, *, level: str,
                     device: str, sandbox: str, answer_format: str = "kernel-builder", executor=None,
                     artifacts: Path | None = None) -> str:
    if executor is not None:  # graded where the executor says; recorded here, by the driver
        from harness.workflows.scale import grade_through

        return grade_through(executor, store, trial, case, text, level=level, device=device, sandbox=sandbox,
                             answer_format=answer_format)
    # A fresh folder per grading (extraction refuses to write into a used one); text-only
    # cases write nothing, so they get none (mkdir was most of a text trial's cost).
    stamp = now().replace(":", "").replace("+0000", "")
    folder = (artifacts or artifacts_dir(trial.run_id, create=False)) / f"trial-{trial.id}" / f"grade-{stamp}-{secrets.token_hex(3)}"
    if case.kernel is not None:
        folder.mkdir(parents=True)
    grade = grade_answer(case, text, level=level, device=device, artifacts=folder,  # type: ignore[arg-type]
                         options=GradeOptions(sandbox=sandbox), answer_format=answer_format)
    store.record_grade(trial.id, grade, version=kernelgrade_version())
    return grade.score.verdict


def _spend(state: _RunState, opts: EvalOptions, cost: float) -> None:
    with state.lock:
        state.cost += cost
        if opts.max_cost is not None and state.cost >= opts.max_cost and not state.stop_reason:
            state.stop_reason = f"--max-cost {opts.max_cost:g} USD reached ({state.cost:.4f} USD)"


def _do_trial(store: Store, trial: TrialRecord, case: Case, client: ModelClient, skill: dict,
              opts: EvalOptions, level: str, config: Config, state: _RunState, executor=None) -> str:
    """Call the model (unless answered already), store the answer, then grade it."""
    if opts.agent:
        return do_agent_trial(store, trial, case, client, skill, opts, level, config,
                              on_cost=lambda cost: _spend(state, opts, cost), should_stop=lambda: bool(state.stop_reason))
    skill_block = skill.get("block", "")
    if trial.status != "answered":
        prompt = build_prompt(case, skill_block if trial.arm == "with_skill" else None, device=opts.device,
                              answer_format=opts.answer_format)
        # The temperature stored is the one sent: None (the provider's default) where the SDK has none.
        temperature = opts.temperature if getattr(client, "takes_temperature", True) else None
        request = prompt.request(max_tokens=opts.max_tokens, temperature=temperature)
        request = cached_request(request, skill_block if trial.arm == "with_skill" else None,
                                 enabled=opts.prompt_cache)
        # The prompt goes in the same write as the answer (or the error): one statement a call.
        # A call cut short stays pending and is prompted afresh on resume.
        sent = (prompt.model_dump(), prompt.sha256, request.model_dump(exclude={"system", "user"}))
        try:
            completion: Completion = client.complete(request)
        except ModelCallError as err:
            store.record_error(trial.id, str(err), calls=err.attempts or 1, prompt=sent)
            return "error"
        store.record_completion(trial.id, completion, prompt=sent)
        _spend(state, opts, config.completion_cost_usd(completion) or 0.0)
        text = completion.text
    else:
        text = trial.completion.text if trial.completion else ""
    return _grade_and_store(store, trial, case, text, level=level, device=opts.device, sandbox=opts.sandbox,
                            answer_format=opts.answer_format, executor=executor, artifacts=state.artifacts)


def _model_limits(specs: list[ModelSpec], concurrency: int) -> dict[str, threading.Semaphore]:
    """Calls in flight per model. The embedded llama.cpp server answers one request at a
    time, so queueing more only makes requests time out while they wait."""
    return {s.name: threading.Semaphore(1 if s.provider == "local" else concurrency) for s in specs}


def _refuse_imported(config: dict, run_id: str) -> None:
    if config.get("imported_from"):
        raise UserError(f"run {run_id}: imported from {config['imported_from']} logs, which hold no answers "
                        "to call for or grade again")


def _step_model(body: str) -> str:
    import json

    return json.loads(body).get("model", "")


def execute(run_id: str, store: Store, progress: Progress | None = None,
            executor: "ExecutorSettings | None" = None) -> str:
    """Finish every trial of the run that has no answer (pending or error) or no grade.

    Used for a new run and for --resume alike. Returns the final run status. Workers are
    daemon threads: on Ctrl-C the run is marked interrupted and the process can exit at
    once; answers already stored stay, calls in flight are redone on resume. With `executor`
    (--executor, --gpus, --cache-dir) one-shot answers are graded through it, while the model
    calls and every write to the store stay here (harness.workflows.scale).
    """
    progress = progress or Progress()
    run = store.get_run(run_id)
    _refuse_imported(run.config, run.id)
    if executor is None or run_mode(run.config) == "agent":
        return _execute(run_id, store, progress, None)
    from harness.workflows.scale import executor_for

    with executor_for(executor, level=run.config["resolved_level"], device=run.config.get("device") or "cuda",
                      progress=progress) as grader:
        return _execute(run_id, store, progress, grader)


def _execute(run_id: str, store: Store, progress: Progress, grader) -> str:
    run = store.get_run(run_id)
    _refuse_imported(run.config, run.id)
    opts = EvalOptions.model_validate({k: v for k, v in run.config.items() if k in EvalOptions.model_fields})
    level = run.config["resolved_level"]
    config = load_config()
    cases = {c.id: c for c in parse_cases(run.cases, source=f"run {run_id}")}
    specs = [resolve(m, config, base_url=opts.base_url, api_key_env=opts.api_key_env) for m in opts.models]
    for spec in specs:
        check_key(spec)
    if run_mode(run.config) == "batch":
        from harness.workflows.batch_eval import execute_batch

        return execute_batch(run_id, store, progress, opts=opts, specs=specs, cases=cases, grade=lambda t, case, text:
                             _grade_and_store(store, t, case, text, level=level, device=opts.device,
                                              sandbox=opts.sandbox, answer_format=opts.answer_format,
                                              executor=grader))
    trials = store.trials(run_id)
    todo = [t for t in trials if t.status != "answered" or t.grade is None]
    progress.on_start(len(todo))
    # --max-cost covers the whole run: what earlier sessions of it spent counts too.
    spent = sum(config.completion_cost_usd(c) or 0.0 for c in (t.completion for t in trials) if c)
    if opts.agent:  # turns of trajectories not finished yet were paid for too
        done = {t.id for t in trials if t.completion}
        spent += sum(config.cost_usd(_step_model(r.body), r.input_tokens or 0, r.output_tokens or 0,
                                     r.cached_tokens or 0) or 0.0
                     for tid, rows in store.agent_steps_of_run(run_id).items() if tid not in done
                     for r in rows if r.role == "assistant")
    state = _RunState(cost=spent, artifacts=artifacts_dir(run_id, create=False))
    if opts.max_cost is not None and spent >= opts.max_cost:
        state.stop_reason = f"--max-cost {opts.max_cost:g} USD already reached ({spent:.4f} USD)"
    store.set_run_status(run_id, "running")
    skill = run.skill or {}
    limits = _model_limits(specs, opts.concurrency)
    with _endpoints(specs, agent=opts.agent, prompt_cache=opts.prompt_cache) as live:
        clients = _clients(live, opts)
        jobs: queue.Queue[TrialRecord | None] = queue.Queue()
        results: queue.Queue[tuple[TrialRecord, str]] = queue.Queue()
        for trial in todo:
            jobs.put(trial)

        def worker() -> None:
            while (trial := jobs.get()) is not None:
                if state.stop_reason:
                    continue  # --max-cost reached: leave the rest pending (resumable)
                try:
                    with limits[trial.model]:
                        outcome = _do_trial(store, trial, cases[trial.case_id], clients[trial.model],
                                            skill, opts, level, config, state, executor=grader)
                except Exception as err:  # a kernelgrade bug: record it, keep the run going
                    log.exception("trial %s crashed", trial.id)
                    store.record_error(trial.id, f"internal: {type(err).__name__}: {err}", calls=0)
                    outcome = "error"
                results.put((trial, outcome))
            results.put((None, "exit"))  # type: ignore[arg-type]

        n_workers = min(opts.concurrency, max(len(todo), 1))
        for _ in range(n_workers):
            jobs.put(None)
            threading.Thread(target=worker, daemon=True, name="trial").start()
        try:
            exited = 0
            while exited < n_workers:
                try:
                    trial, outcome = results.get(timeout=0.5)  # wakes for Ctrl-C
                except queue.Empty:
                    continue
                if trial is None:
                    exited += 1
                else:
                    progress.on_trial(trial, outcome)
        except BaseException:
            state.stop_reason = "interrupted"
            store.set_run_status(run_id, "interrupted")
            raise
    status = "finished"
    if state.stop_reason:
        status = "interrupted"
        log.warning("%s; resume with: kernelgrade eval --resume %s", state.stop_reason, run_id)
        progress.on_stop(state.stop_reason)  # the CLI's exit code tells --max-cost apart
    store.set_run_status(run_id, status)
    return status


def rescore(run_id: str, store: Store, *, level: str, device: str, sandbox: str = "auto",
            progress: Progress | None = None, executor: "ExecutorSettings | None" = None, resume: bool = False) -> int:
    """Re-grade every answered trial with today's checks; appends grades. Returns the count
    graded. One-shot trials go through the executor (harness.workflows.scale); agent trials are
    graded here, from the store's steps. `resume`: skip trials already graded at this level and
    device by this kernelgrade (after a killed rescore)."""
    from harness.checks.levels import resolve_level
    from harness.executors import ExecutorSettings
    from harness.workflows.scale import agent_todo, rescore_run

    progress = progress or Progress()
    run = store.get_run(run_id)
    _refuse_imported(run.config, run.id)
    if run_mode(run.config) != "agent":
        done = rescore_run(run_id, store, level=level, device=device, sandbox=sandbox,
                           settings=executor or ExecutorSettings(), resume=resume, progress=progress)
        if done.skipped:
            progress.on_note(f"--resume: {done.skipped} trial(s) already graded at this level, not graded again")
        return done.graded
    resolved = resolve_level(level, device)  # type: ignore[arg-type]
    cases = {c.id: c for c in parse_cases(run.cases, source=f"run {run_id}")}
    answered = agent_todo(store, run_id, store.trials(run_id, status="answered"), level=resolved, device=device,
                          resume=resume)
    progress.on_start(len(answered))
    for trial in answered:
        verdict = rescore_agent_trial(store, trial, cases[trial.case_id], level=resolved, device=device,
                                      sandbox=sandbox)
        progress.on_trial(trial, verdict)
    return len(answered)
