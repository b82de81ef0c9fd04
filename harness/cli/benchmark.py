"""`kernelgrade benchmark`: upskill's benchmark, a thin command over the eval workflow.

Every case of the skill, --runs times per model, with the skill only (no baseline arm), then
the report `eval` prints. It is `kernelgrade eval SKILL -m M --no-baseline --runs 3` under
upskill's spelling; the run is stored like any other (`runs show`, `runs compare`, `eval --resume`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.options import (
    API_KEY_ENV_HELP, BASE_URL_HELP, CALL_TIMEOUT_HELP, CONCURRENCY_HELP, CSV_HELP, DEVICE_HELP, JSON_HELP,
    LEVEL_HELP, SANDBOX_HELP, TEMPERATURE_HELP, DeviceChoice, LevelChoice, SandboxChoice,
)
from harness.common.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark_cmd)


def benchmark_cmd(
    skill_dir: Path = typer.Argument(..., help="Agent Skills folder (with SKILL.md); skills/NAME names a shipped "
                                     "skill where no such folder exists here."),
    model: list[str] = typer.Option(..., "--model", "-m", help="Model to benchmark (required, as in upskill); "
                                    "repeat for several. Same names as `eval -m` (aliases, provider:id, upskill's "
                                    "provider.id, or an id served at --base-url)."),
    runs: int = typer.Option(3, "--runs", "-n", help="Model calls per case and model (upskill's runs per model, "
                             "default 3). Pass rate is per trial (case x run), not upskill's per run."),
    cases: Path = typer.Option(None, "--tests", "-t", "--cases", "-c", help="Case file (upskill JSON, plus kernel "
                               "blocks). Default: the skill's own (skill_meta.json's tests, else SKILL_DIR/cases.json, "
                               "else cases/<skill name>.json); with none, --test-gen-model writes them."),
    test_gen_model: str = typer.Option(None, "--test-gen-model", help="When no case file is found, this model writes "
                                       "cases from the skill's name and description into SKILL_DIR/cases.json (as "
                                       "`eval --test-gen-model`); with cases it is not needed (a line says so)."),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the run as upskill's run logs "
                                "(DIR/<batch>/run_N/run_result.json, batch_summary.json) for upskill's tools. "
                                "Without -o nothing extra is written (upskill writes ./runs); the run is always "
                                "in kernelgrade's store."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also one row per case (as `eval -v`), where "
                                 "upskill's -v shows per-run details."),
    base_url: str = typer.Option(None, "--base-url", help=BASE_URL_HELP),
    api_key_env: str = typer.Option(None, "--api-key-env", help=API_KEY_ENV_HELP),
    concurrency: int = typer.Option(4, "--concurrency", "-j", help=CONCURRENCY_HELP),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Output token limit per answer (as `eval`)."),
    temperature: float = typer.Option(1.0, "--temperature", help=TEMPERATURE_HELP),
    timeout: float = typer.Option(300.0, "--timeout", help=CALL_TIMEOUT_HELP),
    max_cost: float = typer.Option(None, "--max-cost", help="Stop (resumable with `eval --resume`, exit 5) when "
                                   "the estimated cost in USD is reached."),
    level: LevelChoice = typer.Option("auto", "--level", help=LEVEL_HELP),
    device: DeviceChoice = typer.Option("cuda", "--device", help=DEVICE_HELP),
    sandbox: SandboxChoice = typer.Option("auto", "--sandbox", help=SANDBOX_HELP),
    as_json: str = typer.Option(None, "--json", help=JSON_HELP),
    as_csv: str = typer.Option(None, "--csv", help=CSV_HELP),
) -> None:
    """Benchmark a skill across models (upskill's benchmark): with the skill only, --runs times.

    The same run and report as `kernelgrade eval SKILL_DIR -m M --no-baseline --runs 3`: pass
    rates and assertions per model, no baseline and so no lift. The run is stored; finish an
    interrupted one with `kernelgrade eval --resume RUN_ID`.

    Exit codes as `eval`: 0 done; 2 bad input; 4 no trial could be graded; 5 stopped by --max-cost.
    """
    from harness.cli.eval import case_writer_for, eval_options
    from harness.cli.render import err_console, progress_bar, report_and_gate
    from harness.store.db import Store
    from harness.workflows.evaluate import execute, start_eval

    written: list[Path] = []
    opts = eval_options(skill_dir, cases=cases, models=list(model), runs=runs, no_baseline=True, base_url=base_url,
                        api_key_env=api_key_env, concurrency=concurrency, max_tokens=max_tokens,
                        temperature=temperature, level=level, device=device, sandbox=sandbox, timeout_s=timeout,
                        max_cost=max_cost, case_writer=case_writer_for(test_gen_model, written, base_url=base_url,
                                                                       api_key_env=api_key_env, timeout=timeout))
    if test_gen_model and not written:
        err_console.print(f"--test-gen-model {test_gen_model}: not needed, cases found: {opts.cases_path}",
                          highlight=False)
    store = Store()
    run_id = start_eval(opts, store)
    quiet = "-" in (as_json, as_csv)
    if not quiet:
        err_console.print(f"benchmarking {opts.skill_dir.name} across {len(opts.models)} model(s), {runs} run(s) "
                          f"per model, with the skill only; cases: {opts.cases_path}", highlight=False)
    err_console.print(f"run [bold]{run_id}[/bold]  (resume with: kernelgrade eval --resume {run_id})")
    stops: list[str] = []
    with progress_bar("trials", quiet=quiet, stops=stops) as progress:
        execute(run_id, store, progress)
    if output is not None:
        from harness.workflows.upskill_export import write_upskill_logs

        batch = write_upskill_logs(store, run_id, output)
        err_console.print(f"upskill logs written to {batch}", highlight=False)
    report_and_gate(store, run_id, as_json=as_json, csv=as_csv, junit=None, html=None, fail_under=None,
                    min_lift=None, per_case=verbose, stopped=stops[0] if stops else None, outcome=True)
