"""`kernelgrade rescore`: grade stored answers again with today's checks."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.options import CACHE_DIR_HELP, CSV_HELP, DEVICE_HELP, EXECUTOR_HELP, GPUS_HELP, JSON_HELP, LEVEL_HELP, \
    RAY_ADDRESS_HELP, SANDBOX_HELP, DeviceChoice, ExecutorChoice, LevelChoice, SandboxChoice


def register(app: typer.Typer) -> None:
    app.command("rescore")(rescore_cmd)


def rescore_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    level: LevelChoice = typer.Option("auto", "--level", help=LEVEL_HELP),
    device: DeviceChoice = typer.Option("cuda", "--device", help=DEVICE_HELP),
    sandbox: SandboxChoice = typer.Option("auto", "--sandbox", help=SANDBOX_HELP),
    executor: ExecutorChoice = typer.Option("local", "--executor", help=EXECUTOR_HELP),
    ray_address: str = typer.Option("auto", "--ray-address", help=RAY_ADDRESS_HELP),
    gpus: str = typer.Option(None, "--gpus", help=GPUS_HELP),
    cache_dir: Path = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
    resume: bool = typer.Option(False, "--resume", help="After a killed rescore: grade only the trials without a "
                                "grade at this level and device by this kernelgrade."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also one row per case."),
    as_json: str = typer.Option(None, "--json", help=JSON_HELP),
    as_csv: str = typer.Option(None, "--csv", help=CSV_HELP),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    fail_under: float = typer.Option(None, "--fail-under", help="Exit 1 if any with-skill pass rate is below this (0-1)."),
    min_lift: float = typer.Option(None, "--min-lift", help="Exit 1 if any model's lift is below this (0-1)."),
) -> None:
    """Re-grade every answered trial of a run with today's checks (no model calls).

    E.g. on an H100 node after `runs import`. New grades are added; the old ones stay in the database.

    Exit codes: 0 done; 1 a gate failed; 2 bad input; 3 internal error; 4 no trial could be graded."""
    from harness.cli.render import progress_bar, report_and_gate
    from harness.executors import ExecutorSettings
    from harness.workflows.evaluate import rescore
    from harness.store.db import Store

    store = Store()
    run_id = store.get_run(run_id).id
    settings = ExecutorSettings(executor=executor, ray_address=ray_address, gpus=gpus, cache_dir=cache_dir)
    with progress_bar("rescoring", quiet="-" in (as_json, as_csv)) as progress:
        rescore(run_id, store, level=level, device=device, sandbox=sandbox, progress=progress, executor=settings,
                resume=resume)
    report_and_gate(store, run_id, as_json=as_json, csv=as_csv, junit=junit, html=html,
                    fail_under=fail_under, min_lift=min_lift, per_case=verbose, outcome=True)
