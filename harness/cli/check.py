"""`kernelgrade check PROJECT_DIR`: grade a kernel-builder project as a kernel
repository's CI would: build.toml, compile (sm_90 / sm_90a), SASS, and where the
level allows, run and speedup.

Exit codes (DESIGN.md): 1 when a check within the level failed; 3 when a check hit
an internal error; 0 otherwise, with every skip listed (`--strict`: any skip is 1);
2 for usage errors (a missing project, `--level run` without a CUDA device, ...).

A project with no CUDA kernel (Triton or other noarch Python, Metal-only, CPU-only) is not a
failure: compile is skipped with one statement ("no CUDA kernel to compile: ..."), the
checks after it say the same, and the exit code is 0 (1 with --strict, like any skip).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.common.results import CheckResult

_STATUS_STYLE = {"pass": "green", "fail": "red", "skip": "yellow", "error": "magenta"}
_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "note": "cyan"}
#: Metrics shown in the table, per check, when present.
_SHOWN_METRICS = {
    "scan": ("errors", "warnings"),
    "compile": ("units", "units_cached", "max_registers", "max_smem_bytes", "spill_bytes"),
    "sass": ("sass_kernels", "empty_kernels"),
    "run": ("max_abs_err",),
    "speedup": ("speedup", "bandwidth_fraction"),
}


def _render(console: Console, results: list[CheckResult], *, project: Path, level: str, level_note: str,
            device: str, verbose: bool, artifacts: Path) -> None:
    table = Table(title=f"kernelgrade check {project}", title_justify="left")
    for col in ("check", "status", "reason", "figures"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = _STATUS_STYLE[r.status]
        shown = [f"{k}={r.metrics[k]}" for k in _SHOWN_METRICS.get(r.name, ()) if r.metrics.get(k) is not None]
        name = r.name + (" (CPU)" if r.device == "cpu" else "")
        table.add_row(name, f"[{style}]{r.status}[/{style}]", escape(r.reason), escape(" ".join(shown)))
    console.print(table)
    for r in results:
        for f in r.findings:
            if f.severity == "note" and not verbose:
                continue
            style = _SEVERITY_STYLE[f.severity]
            console.print(f"  [{style}]{f.severity:<7}[/{style}] {r.name}: [bold]{escape(f.key)}[/bold]: "
                          f"{escape(f.reason)}")
        if r.status in ("fail", "error") and r.log_path:
            console.print(f"  full log: {escape(r.log_path)}")
    skipped = [r for r in results if r.status == "skip"]
    console.print(f"level: {level}{level_note}; device: {device}" + (" (CPU figures)" if device == "cpu" else "")
                  + f"; artifacts: {escape(str(artifacts))}")
    if skipped:
        console.print("skipped: " + "; ".join(f"{r.name} ({escape(r.reason)})" for r in skipped))


def check(
    project_dir: Path = typer.Argument(..., metavar="PROJECT_DIR", help="A kernel-builder project (with build.toml)."),
    level: str = typer.Option("auto", "--level", help="auto | text | compile | run. auto: run with a CUDA device "
                              "(or --device cpu), compile where nvcc is found, else text."),
    device: str = typer.Option("cuda", "--device", help="cuda | cpu: run the project's CPU kernels with --device cpu."),
    op: str = typer.Option(None, "--op", help="Reference op in kernels_reference/ (for run/speedup)."),
    reference: Path = typer.Option(None, "--reference", help="A reference.py (API, reference, make_inputs, ...)."),
    sandbox: str = typer.Option("auto", "--sandbox", help="auto | local | bwrap | container, for the project's code."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per compile."),
    baseline: str = typer.Option("eager", "--baseline", help="eager | compile: time the speedup against the eager "
                                 "PyTorch reference, or the reference under torch.compile (KernelBench's second "
                                 "baseline; correctness is always judged against the eager reference)."),
    executor: str = typer.Option("local", "--executor", help="local | ray: where the checks run (ray: on a node of "
                                 "the cluster, the project's files sent as content; see docs/scale.md)."),
    ray_address: str = typer.Option("auto", "--ray-address", help="--executor ray: auto or ray://HOST:PORT."),
    gpus: str = typer.Option(None, "--gpus", help="--executor local: the GPU to run on (CUDA_VISIBLE_DEVICES name)."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="The content cache; per node unless shared."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per check)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any check was skipped."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show notes (per-kernel registers, SASS mix)."),
) -> None:
    """Check a kernel project: build.toml, compile for H100 (sm_90/sm_90a), SASS, and with a
    device, run against the reference and time it.

    Exit codes: 0 every check within the level passed (skips are listed; a project with no
    CUDA kernel is 0, its compile skip said plainly); 1 a check failed (or, with --strict, was
    skipped); 2 usage error (also --level run with no reference to run against); 3 internal error.
    """
    from harness.executors import ExecutorSettings
    from harness.workflows.check_project import check_project, exit_code, junit_xml

    if baseline not in ("eager", "compile"):
        raise typer.BadParameter(f"{baseline!r}: eager or compile", param_hint="--baseline")
    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"{executor!r}: local or ray", param_hint="--executor")
    level_note = " (auto)" if level == "auto" else ""
    # One project: the local default is today's in-process checks; the executor only when asked for.
    settings = None if (executor, gpus, cache_dir) == ("local", None, None) else ExecutorSettings(
        executor=executor, ray_address=ray_address, gpus=gpus, cache_dir=cache_dir)  # type: ignore[arg-type]
    found = check_project(project_dir, level=level, device=device, op=op, reference=reference,
                          sandbox=sandbox, timeout_s=timeout, executor=settings, baseline=baseline)
    results, resolved, ref, artifacts = found.results, found.level, found.reference, found.artifacts
    code = exit_code(results, strict=strict)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        tree = junit_xml(results, project=project_dir.name, level=resolved, device=device)
        ET.indent(tree)
        tree.write(junit, encoding="utf-8", xml_declaration=True)
    if as_json:
        typer.echo(json.dumps({
            "project": str(project_dir), "level": resolved, "level_requested": level, "device": device,
            "reference": str(ref) if ref else None, "artifacts": str(artifacts), "exit_code": code,
            "results": [r.model_dump() for r in results],
            "skipped": [f"{r.name}: {r.reason}" for r in results if r.status == "skip"],
        }, indent=2, default=str))
    else:
        _render(Console(highlight=False), results, project=project_dir, level=resolved, level_note=level_note,
                device=device, verbose=verbose, artifacts=artifacts)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
