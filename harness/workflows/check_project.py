"""`check PROJECT`: grade one kernel-builder project as a kernel repository's CI would.

The library side of `kernelgrade check`: run the project checks at a level, the exit policy
(DESIGN.md "Exit codes by command") and the JUnit report. The CLI only parses and renders.
"""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from harness.common.check_table import PROJECT_CHECKS
from harness.common.errors import UserError
from harness.common.results import CheckResult, Device, Level

if TYPE_CHECKING:
    from harness.executors import ExecutorSettings


class ProjectCheck(BaseModel):
    """What `check` found: the level in effect, the reference used, every check's result."""

    project: Path
    level: Level
    device: Device
    reference: Path | None
    artifacts: Path
    results: list[CheckResult]


def check_project(project_dir: Path, *, level: str = "auto", device: str = "cuda", op: str | None = None,
                  reference: Path | None = None, sandbox: str = "auto", timeout_s: float = 600.0,
                  executor: "ExecutorSettings | None" = None, baseline: str = "eager") -> ProjectCheck:
    """Every project check within `level` (resolved as DESIGN.md "Levels" says) on `project_dir`.
    With `executor`, the checks run as one task of it (harness.workflows.scale.check_through):
    on Ray the project's files travel to a node, locally `--gpus` pins the run to a GPU."""
    from harness.checks import GradeOptions
    from harness.checks.base import CheckContext
    from harness.checks.levels import resolve_level
    from harness.common.paths import artifacts_dir
    from harness.inputs.reference import resolve_reference_path
    from harness.scoring.grade import run_checks

    project_dir = Path(project_dir)
    if not project_dir.is_dir():
        raise UserError(f"{project_dir}: no such project folder")
    if not (project_dir / "build.toml").is_file():
        raise UserError(f"{project_dir}: no build.toml (not a kernel-builder project)")
    resolved = resolve_level(level, device) if executor is None else level  # type: ignore[arg-type]
    ref = resolve_reference_path(explicit=reference, op=op, project_dir=project_dir)
    ref = ref.resolve() if ref is not None else None
    if level == "run" and ref is None:
        # Asked for a run, a skip would let CI pass with nothing run ("auto" may skip it).
        raise UserError("--level run: no reference to run against (give --op NAME or --reference FILE, "
                        "or put a reference.py at the project root)")
    run_id = f"check-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    artifacts = artifacts_dir(run_id)
    options = GradeOptions(sandbox=sandbox, compile_timeout_s=timeout_s, reference=ref, baseline=baseline)
    if executor is not None:
        from harness.workflows.scale import check_through

        results, resolved = check_through(executor, project_dir, level=level, device=device, options=options,
                                          artifacts=artifacts)
        return ProjectCheck(project=project_dir, level=resolved, device=device, reference=ref,  # type: ignore[arg-type]
                            artifacts=artifacts, results=results)
    ctx = CheckContext(case=None, text="", project_dir=project_dir.resolve(), level=resolved,
                       device=device, artifacts=artifacts, options=options)  # type: ignore[arg-type]
    results = run_checks(ctx, list(PROJECT_CHECKS))
    return ProjectCheck(project=project_dir, level=resolved, device=device, reference=ref,  # type: ignore[arg-type]
                        artifacts=artifacts, results=results)


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


__all__ = ["ProjectCheck", "check_project", "exit_code", "junit_xml"]
