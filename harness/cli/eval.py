"""`kernelgrade eval`: upskill's eval, baseline vs with-skill, graded by running the answers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from harness.common.errors import UserError

#: The embedded model has an 8192-token context; the shipped skill block is ~7,400 tokens.
LOCAL_MAX_TOKENS = 768


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


def eval_cmd(
    skill_dir: Path = typer.Argument(None, help="Agent Skills folder (with SKILL.md). Not needed with --resume."),
    cases: Path = typer.Option(None, "--cases", "-c", help="Case file (upskill JSON, plus kernel blocks). "
                               "Default: SKILL_DIR/cases.json, else cases/<skill name>.json."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model alias, provider:id, or an id served at "
                                    "--base-url; repeat for several. Default: local (the embedded model) unless "
                                    "ANTHROPIC_API_KEY or OPENAI_API_KEY is set."),
    runs: int = typer.Option(1, "--runs", "-n", help="Independent model calls per case and arm."),
    base_url: str = typer.Option(None, "--base-url", help="Any OpenAI-compatible server, e.g. http://localhost:8080/v1"),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Environment variable holding the key for --base-url "
                                    "(none needed for local servers)."),
    concurrency: int = typer.Option(4, "--concurrency", "-j", help="Model calls in flight at once."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Output token limit per answer. Default 4096; "
                                   "768 with the embedded model, whose 8192-token context must also hold the skill."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature (stored with the run)."),
    level: str = typer.Option("auto", "--level", help="auto | text | compile | run. auto: run with a GPU (or "
                              "--device cpu), compile where nvcc is found, else text."),
    device: str = typer.Option("cuda", "--device", help="cuda | cpu: where run checks execute. CPU figures are "
                               "labelled CPU and never pooled with GPU ones."),
    sandbox: str = typer.Option("auto", "--sandbox", help="auto | local | bwrap | container, for model-written code."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds per model call."),
    max_cost: float = typer.Option(None, "--max-cost", help="Stop (resumable) when the estimated cost in USD is reached."),
    agent: bool = typer.Option(False, "--agent", help="Agent mode: the student works over several turns through "
                               "tools (read_file, write_file, list_files, run_checks, submit) in a workspace; "
                               "one-shot (one message, no tools) is the default. See docs/agent.md."),
    max_turns: int = typer.Option(12, "--max-turns", help="Agent mode: model calls per trial (a case's max_turns "
                                  "wins). A trial that reaches it is graded as it stands, counted as ran out."),
    max_trial_tokens: int = typer.Option(None, "--max-trial-tokens", help="Agent mode: input plus output tokens "
                                         "per trial over all its calls (default: no budget)."),
    skill_delivery: Literal["inline", "on-demand"] = typer.Option(
        None, "--skill-delivery", help="Agent mode: on-demand (default: the skill's name and description in the "
        "system prompt, its files under skill/) or inline (the whole skill in the first message)."),
    resume: str = typer.Option(None, "--resume", help="Finish an interrupted run without re-calling answered trials "
                               "(agent mode: continues each trajectory from its last stored step)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    fail_under: float = typer.Option(None, "--fail-under", help="Exit 1 if any with-skill pass rate is below this (0-1)."),
    min_lift: float = typer.Option(None, "--min-lift", help="Exit 1 if any model's lift is below this (0-1)."),
) -> None:
    """Evaluate a skill: every case, for every model, with and without the skill, --runs times.

    Every prompt and answer is stored (SQLite) before grading; Ctrl-C or a crash leaves a run that
    `--resume ID` finishes. Failed API calls are errors, counted apart from failed answers.
    """
    from harness.cli.render import err_console, progress_bar, report_and_gate
    from harness.workflows.evaluate import EvalOptions, execute, start_eval
    from harness.models.registry import default_model
    from harness.store.db import Store

    store = Store()
    if resume:
        run_id = store.get_run(resume).id
    else:
        if skill_dir is None:
            raise UserError("give a SKILL_DIR (or --resume RUN_ID)")
        if not (skill_dir / "SKILL.md").is_file():
            raise UserError(f"{skill_dir}: no SKILL.md (not an Agent Skills folder)")
        if cases is None:
            candidates = [skill_dir / "cases.json", Path("cases") / f"{skill_dir.resolve().name}.json"]
            cases = next((c for c in candidates if c.is_file()), None)
            if cases is None:
                raise UserError(f"no --cases given and none of {', '.join(map(str, candidates))} exists")
        models = model or [default_model()]
        if max_tokens is None:
            max_tokens = LOCAL_MAX_TOKENS if "local" in models else 4096
        opts = EvalOptions(skill_dir=skill_dir, cases_path=cases, models=models, runs=runs,
                           base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                           max_tokens=max_tokens, temperature=temperature, level=level, device=device,
                           sandbox=sandbox, timeout_s=timeout, max_cost=max_cost, agent=agent,
                           max_turns=max_turns, max_trial_tokens=max_trial_tokens, skill_delivery=skill_delivery)
        run_id = start_eval(opts, store)
    err_console.print(f"run [bold]{run_id}[/bold]  (resume with: kernelgrade eval --resume {run_id})")
    try:
        with progress_bar("trials", quiet=as_json) as progress:
            status = execute(run_id, store, progress)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: answers so far are stored; resume with: kernelgrade eval --resume {run_id}")
        raise
    if status != "finished":
        err_console.print(f"run {run_id} stopped early ({status}); resume with: kernelgrade eval --resume {run_id}")
    report_and_gate(store, run_id, as_json=as_json, junit=junit, html=html,
                    fail_under=fail_under, min_lift=min_lift)
