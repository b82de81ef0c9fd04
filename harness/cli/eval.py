"""`kernelgrade eval`: upskill's eval, baseline vs with-skill, graded by running the answers.

upskill's spellings work as aliases (-t/--tests, -m/--model, --no-baseline, -v, --test-gen-model,
--log-runs/--no-log-runs, --runs-dir); where the meaning differs from upskill's, the option's help says how.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from harness.cli.options import (
    API_KEY_ENV_HELP, BASE_URL_HELP, CACHE_DIR_HELP, CALL_TIMEOUT_HELP, CONCURRENCY_HELP, CSV_HELP, DEVICE_HELP,
    EXECUTOR_HELP, GPUS_HELP, JSON_HELP, LEVEL_HELP, RAY_ADDRESS_HELP, SANDBOX_HELP, TEMPERATURE_HELP, AnswerFormatChoice, DeviceChoice, ExecutorChoice, LevelChoice, SandboxChoice, log_runs_option,
    runs_dir_option, upskill_runs_dir, write_run_logs,
)
from harness.common.errors import UserError
from harness.prompts.agent import SkillDelivery

#: The embedded model has an 8192-token context; the shipped skill block is ~7,400 tokens.
LOCAL_MAX_TOKENS = 768


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


def eval_options(skill_dir: Path, *, cases: Path | None, models: list[str], runs: int,
                 case_writer: Callable[[Path], Path] | None = None, **settings):
    """EvalOptions from what was typed: the default cases (skill_meta.json's tests, as upskill reads
    them, ...) and the output limit follow the model. The CLI calls this; tests compare spellings with it.
    `case_writer` (--test-gen-model): called with the skill folder when no cases are found; returns the
    case file it wrote."""
    from harness.inputs.skill_meta import default_cases_path
    from harness.models.registry import default_model
    from harness.workflows.evaluate import EvalOptions

    from harness.common.paths import shipped_path

    skill_dir = shipped_path(skill_dir, "skills")  # skills/NAME: a shipped skill when there is no such folder here
    cases = shipped_path(cases, "cases") if cases is not None else None
    if not (skill_dir / "SKILL.md").is_file():
        raise UserError(f"{skill_dir}: no SKILL.md (not an Agent Skills folder)")
    if cases is None:
        try:
            cases, _why = default_cases_path(skill_dir)
        except UserError:
            if case_writer is None:
                raise
            cases = case_writer(skill_dir)
    models = models or [default_model()]
    if settings.get("max_tokens") is None:
        settings["max_tokens"] = LOCAL_MAX_TOKENS if "local" in models else 4096
    return EvalOptions(skill_dir=skill_dir, cases_path=cases, models=models, runs=runs, **settings)


def eval_cmd(
    skill_dir: Path = typer.Argument(None, help="Agent Skills folder (with SKILL.md); skills/NAME names a shipped "
                                     "skill where no such folder exists here. Not needed with --resume."),
    cases: Path = typer.Option(None, "--cases", "-c", "--tests", "-t", help="Case file (upskill JSON, plus "
                               "kernel blocks; -t/--tests is upskill's spelling). Default: SKILL_DIR/skill_meta.json's "
                               "tests (as upskill), else SKILL_DIR/cases.json, else cases/<skill name>.json."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model alias, provider:id, upskill's provider.id "
                                    "(anthropic.claude-..., openai.gpt-..., generic.NAME with GENERIC_BASE_URL), or an "
                                    "id served at --base-url; repeat for several. Default: local (the embedded "
                                    "model) unless ANTHROPIC_API_KEY or OPENAI_API_KEY is set."),
    runs: int = typer.Option(1, "--runs", "-n", help="Independent model calls per case and arm. Unlike upskill, "
                             "several models or runs keep the baseline (upskill's benchmark mode drops it)."),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="With-skill arm only (upskill's flag): no "
                                     "baseline trials, so no lift."),
    base_url: str = typer.Option(None, "--base-url", help=BASE_URL_HELP),
    api_key_env: str = typer.Option(None, "--api-key-env", help=API_KEY_ENV_HELP),
    concurrency: int = typer.Option(4, "--concurrency", "-j", help=CONCURRENCY_HELP),
    call_processes: int = typer.Option(None, "--call-processes", help="Worker processes that make the one-shot "
                                       "model calls (0: all in this process). Default: none below --concurrency 32, "
                                       "else one per 16 calls in flight, at most one per core. Many fast calls (a "
                                       "local vLLM) are bound by one process's Python; slow API calls are not."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Output token limit per answer. Default 4096; "
                                   "768 with the embedded model, whose 8192-token context must also hold the skill."),
    temperature: float = typer.Option(1.0, "--temperature", help=TEMPERATURE_HELP),
    level: LevelChoice = typer.Option("auto", "--level", help=LEVEL_HELP),
    device: DeviceChoice = typer.Option("cuda", "--device", help=DEVICE_HELP),
    sandbox: SandboxChoice = typer.Option("auto", "--sandbox", help=SANDBOX_HELP),
    executor: ExecutorChoice = typer.Option("local", "--executor", help=EXECUTOR_HELP + " Model calls stay here."),
    ray_address: str = typer.Option("auto", "--ray-address", help=RAY_ADDRESS_HELP),
    gpus: str = typer.Option(None, "--gpus", help=GPUS_HELP),
    cache_dir: Path = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
    answer_format: AnswerFormatChoice = typer.Option(
        "kernel-builder", "--answer-format", help="How kernel answers are written: a kernel-builder project, "
        "or (imported KernelBench cases, one-shot) KernelBench's ModelNew with load_inline, adapted to a "
        "project and graded by the same checks. See docs/kernelbench.md."),
    timeout: float = typer.Option(300.0, "--timeout", help=CALL_TIMEOUT_HELP),
    max_cost: float = typer.Option(None, "--max-cost", help="Stop (resumable, exit 5) when the estimated cost "
                                   "in USD is reached."),
    agent: bool = typer.Option(False, "--agent", help="Agent mode: the student works over several turns through "
                               "tools (read_file, write_file, list_files, run_checks, submit) in a workspace; "
                               "one-shot (one message, no tools) is the default. See docs/agent.md."),
    batch: bool = typer.Option(False, "--batch", help="Send the trials through the provider's batch API "
                               "(Anthropic Message Batches, OpenAI Batch API): half price, answers within 24 h; "
                               "--resume re-attaches to a batch still running. One-shot only."),
    no_prompt_cache: bool = typer.Option(False, "--no-prompt-cache", help="Do not ask for the providers' prompt "
                                         "caches (on by default: the shared prefix is marked for caching; no "
                                         "prompt text changes)."),
    max_turns: int = typer.Option(12, "--max-turns", help="Agent mode: model calls per trial (a case's max_turns "
                                  "wins). A trial that reaches it is graded as it stands, counted as ran out."),
    max_trial_tokens: int = typer.Option(None, "--max-trial-tokens", help="Agent mode: input plus output tokens "
                                         "per trial over all its calls (default: no budget)."),
    skill_delivery: SkillDelivery = typer.Option(
        None, "--skill-delivery", help="Agent mode: on-demand (default: the skill's name and description in the "
        "system prompt, its files under skill/) or inline (the whole skill in the first message)."),
    resume: str = typer.Option(None, "--resume", help="Finish an interrupted run without re-calling answered trials "
                               "(agent mode: continues each trajectory from its last stored step)."),
    test_gen_model: str = typer.Option(None, "--test-gen-model", help="When no case file is found (no --cases, "
                                       "no skill_meta.json tests, no SKILL_DIR/cases.json, no cases/<name>.json), "
                                       "this model writes a few cases from the skill's name and description, "
                                       "as upskill's does; resolved like -m (with --base-url / --api-key-env). Unlike "
                                       "upskill, they are saved as SKILL_DIR/cases.json (path printed), so later "
                                       "evals use the same cases. With cases found it is not needed (said)."),
    log_runs: bool | None = log_runs_option(),
    runs_dir: Path = runs_dir_option(),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also one row per case (upskill's -v), with "
                                 "passed/completed trials per model and arm."),
    as_json: str = typer.Option(None, "--json", help=JSON_HELP),
    as_csv: str = typer.Option(None, "--csv", help=CSV_HELP),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    fail_under: float = typer.Option(None, "--fail-under", help="Exit 1 if any with-skill pass rate is below this "
                                     "(0-1). Pass rate is per trial (case x run), not upskill's per run."),
    min_lift: float = typer.Option(None, "--min-lift", help="Exit 1 if any model's lift is below this (0-1)."),
) -> None:
    """Evaluate a skill: every case and model, with and without the skill, --runs times.

    Every prompt and answer is stored (SQLite) before grading; Ctrl-C or a crash leaves a run that
    `--resume ID` finishes. Failed API calls are errors, counted apart from failed answers.

    Pass rate is per trial: passed / (passed + failed) over every case and run, with a Wilson
    interval. upskill's benchmark "pass rate" is per run (a run passes when every case passed);
    `kernelgrade runs import` of upskill logs keeps that per-run figure, labelled as upskill's.

    Exit codes: 0 done; 1 a gate failed; 2 bad input; 3 internal error; 4 no trial could be
    graded (all errored); 5 stopped by --max-cost (resume it).
    """
    from harness.cli.render import err_console, progress_bar, report_and_gate
    from harness.executors import ExecutorSettings
    from harness.workflows.evaluate import execute, start_eval
    from harness.store.db import Store

    store = Store()
    logs_dir = upskill_runs_dir(log_runs, runs_dir)
    if resume:
        run_id = store.get_run(resume).id
        if test_gen_model:
            err_console.print(f"--test-gen-model {test_gen_model}: not needed (a resumed run keeps its cases)")
    else:
        if skill_dir is None:
            raise UserError("give a SKILL_DIR (or --resume RUN_ID)")
        written: list[Path] = []
        opts = eval_options(skill_dir, cases=cases, models=list(model or []), runs=runs, no_baseline=no_baseline,
                            base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                            call_processes=call_processes,
                            max_tokens=max_tokens, temperature=temperature, level=level, device=device,
                            sandbox=sandbox, timeout_s=timeout, max_cost=max_cost, agent=agent,
                            max_turns=max_turns, max_trial_tokens=max_trial_tokens, skill_delivery=skill_delivery,
                            prompt_cache=not no_prompt_cache, batch=batch,
                            answer_format=answer_format,
                            case_writer=case_writer_for(test_gen_model, written, base_url=base_url,
                                                        api_key_env=api_key_env, timeout=timeout))
        if cases is None:
            err_console.print(f"cases: {opts.cases_path}", highlight=False)
        if test_gen_model and not written:
            err_console.print(f"--test-gen-model {test_gen_model}: not needed, cases found: {opts.cases_path}",
                              highlight=False)
        run_id = start_eval(opts, store)
        meta = (store.get_run(run_id).skill or {}).get("meta")
        if meta:
            from harness.inputs.skill_meta import read_skill_meta

            info = read_skill_meta(skill_dir)
            if info is not None:
                err_console.print(info.summary(), highlight=False)
    err_console.print(f"run [bold]{run_id}[/bold]  (resume with: kernelgrade eval --resume {run_id})")
    quiet = "-" in (as_json, as_csv)
    stops: list[str] = []
    try:
        with progress_bar("trials", quiet=quiet, stops=stops) as progress:
            status = execute(run_id, store, progress, executor=ExecutorSettings(
                executor=executor, ray_address=ray_address, gpus=gpus, cache_dir=cache_dir))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: answers so far are stored; resume with: kernelgrade eval --resume {run_id}")
        raise
    if status != "finished" and not stops:
        err_console.print(f"run {run_id} stopped early ({status}); resume with: kernelgrade eval --resume {run_id}")
    if logs_dir is not None:
        if status == "finished":
            write_run_logs(store, [run_id], logs_dir, lambda line: err_console.print(line, highlight=False))
        else:
            err_console.print(f"upskill run logs: not written (the run did not finish); --resume {run_id} "
                              f"--runs-dir {logs_dir} writes them", highlight=False)
    report_and_gate(store, run_id, as_json=as_json, csv=as_csv, junit=junit, html=html, fail_under=fail_under,
                    min_lift=min_lift, per_case=verbose, stopped=stops[0] if stops else None, outcome=True)


def case_writer_for(model: str | None, written: list[Path], **how) -> Callable[[Path], Path] | None:
    """--test-gen-model: the function eval_options calls when no cases are found (None without it)."""
    if not model:
        return None
    from harness.cli.render import err_console

    def write(skill_dir: Path) -> Path:
        from harness.workflows.generate_cases import EVAL_CASES, write_skill_cases

        err_console.print(f"no cases found: {model} (--test-gen-model) writes {EVAL_CASES} from the skill's name "
                          "and description", highlight=False)
        path = write_skill_cases(skill_dir, model, base_url=how["base_url"], api_key_env=how["api_key_env"],
                                 timeout_s=how["timeout"])
        err_console.print(f"cases written by {model}: {path}", highlight=False)
        written.append(path)
        return path

    return write
