"""`kernelgrade check PROJECT_DIR`: grade a kernel-builder project as a kernel
repository's CI would: build.toml, compile (sm_90 / sm_90a), SASS, and where the
level allows, run and speedup.

Exit codes (DESIGN.md): 1 when a check within the level failed; 3 when a check hit
an internal error; 0 otherwise, with every skip listed (`--strict`: any skip is 1);
2 for usage errors (a missing project, `--level run` without a CUDA device, ...).
"""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.errors import UserError
from harness.results import CheckResult

CHECK_NAMES = ["build_toml", "scan", "compile", "sass", "run", "speedup"]
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


def _resolve_reference(project_dir: Path, reference: Path | None, op: str | None) -> Path | None:
    """--reference FILE, else --op NAME (kernels_reference/NAME), else PROJECT/reference.py."""
    from harness.paths import repo_root

    if reference is not None:
        if not reference.is_file():
            raise UserError(f"--reference {reference}: no such file")
        return reference.resolve()
    if op is not None:
        path = repo_root() / "kernels_reference" / op / "reference.py"
        if not path.is_file():
            raise UserError(f"--op {op}: no kernels_reference/{op}/reference.py")
        return path
    local = project_dir / "reference.py"
    return local.resolve() if local.is_file() else None


def exit_code(results: list[CheckResult], *, strict: bool) -> int:
    if any(r.status == "fail" for r in results):
        return 1
    if any(r.status == "error" for r in results):
        return 3
    if strict and any(r.status == "skip" for r in results):
        return 1
    return 0


def junit_xml(results: list[CheckResult], *, project: str, level: str, device: str) -> ET.ElementTree:
    """One testcase per check; skips as <skipped>; CPU-labelled names with --device cpu."""
    label = " [CPU]" if device == "cpu" else ""
    suite = ET.Element("testsuite", {
        "name": f"kernelgrade check {project}{label}",
        "tests": str(len(results)),
        "failures": str(sum(r.status == "fail" for r in results)),
        "errors": str(sum(r.status == "error" for r in results)),
        "skipped": str(sum(r.status == "skip" for r in results)),
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("level", level), ("device", device)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for r in results:
        case = ET.SubElement(suite, "testcase", {"classname": f"kernelgrade.check.{project}",
                                                 "name": f"{r.name}{label}"})
        detail = "\n".join(f"{f.severity} {f.key}: {f.reason}" for f in r.findings if f.severity != "note")
        if r.status == "fail":
            ET.SubElement(case, "failure", {"message": r.reason, "type": "fail"}).text = detail
        elif r.status == "error":
            ET.SubElement(case, "error", {"message": r.reason, "type": "error"}).text = detail
        elif r.status == "skip":
            ET.SubElement(case, "skipped", {"message": r.reason})
        if r.metrics:
            ET.SubElement(case, "system-out").text = json.dumps(r.metrics, default=str)
    root = ET.Element("testsuites", {"name": "kernelgrade check"})
    root.append(suite)
    return ET.ElementTree(root)


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
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per check)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any check was skipped."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show notes (per-kernel registers, SASS mix)."),
) -> None:
    """Check a kernel project: build.toml, compile for H100 (sm_90/sm_90a), SASS, and with a
    device, run against the reference and time it.

    Exit codes: 0 every check within the level passed (skips are listed); 1 a check failed
    (or, with --strict, was skipped); 2 usage error; 3 internal error.
    """
    from harness.checks import GradeOptions
    from harness.checks.base import CheckContext
    from harness.grading import run_checks
    from harness.levels import resolve_level
    from harness.paths import artifacts_dir

    project_dir = Path(project_dir)
    if not project_dir.is_dir():
        raise UserError(f"{project_dir}: no such project folder")
    if not (project_dir / "build.toml").is_file():
        raise UserError(f"{project_dir}: no build.toml (not a kernel-builder project)")
    resolved = resolve_level(level, device)  # type: ignore[arg-type]
    level_note = f" (auto)" if level == "auto" else ""
    ref = _resolve_reference(project_dir, reference, op)
    run_id = f"check-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    artifacts = artifacts_dir(run_id)
    options = GradeOptions(sandbox=sandbox, compile_timeout_s=timeout, reference=ref)
    ctx = CheckContext(case=None, text="", project_dir=project_dir.resolve(), level=resolved,
                       device=device, artifacts=artifacts, options=options)  # type: ignore[arg-type]
    results = run_checks(ctx, CHECK_NAMES)
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
