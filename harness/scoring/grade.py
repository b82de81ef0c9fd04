"""Grade one answer: extract the project, run the required checks in order, score.

Used by `eval`, `rescore` and `check`, so old responses are graded by today's checks.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness.inputs.cases import Case
from harness.checks import DEPENDS, GradeOptions, get_check
from harness.checks.base import CheckContext
from harness.common.errors import UserError
from harness.common.results import CheckResult, Device, Finding, Level
from harness.common.check_table import CHECK_ORDER
from harness.scoring.verdict import Score, in_level, score

log = logging.getLogger(__name__)


class Grade(BaseModel):
    results: list[CheckResult]
    required: list[str]
    score: Score
    level: Level
    device: Device
    extraction: list[Finding] = []
    """Findings from extracting files out of the answer (rejected paths, limits)."""
    where: dict[str, Any] = {}
    """Where it was graded (harness.executors: executor, node, GPU and its name, driver, torch,
    nvcc, and each step's node); empty for grades made before executors recorded it."""


def _with_dependencies(required: list[str]) -> list[str]:
    wanted = set(required)
    changed = True
    while changed:
        changed = False
        for name in list(wanted):
            for dep in DEPENDS.get(name, ()):
                if dep not in wanted:
                    wanted.add(dep)
                    changed = True
    return [c for c in CHECK_ORDER if c in wanted]


def run_checks(ctx: CheckContext, names: list[str]) -> list[CheckResult]:
    """Run `names` in order; skip above the level and after a dependency that did not pass."""
    results: list[CheckResult] = []
    for name in names:
        if not in_level(name, ctx.level):
            result = CheckResult.skip(name, f"level {ctx.level}")
        else:
            blocker = next((d for d in DEPENDS.get(name, ())
                            if d in ctx.prior and ctx.prior[d].status != "pass"), None)
            if blocker is not None:
                # Blocked by a skip, it says the skip's reason (`sass: compile skipped: no CUDA
                # kernel to compile ...`), which does not read like a failure; by a failure, no more.
                prior = ctx.prior[blocker]
                result = CheckResult.skip(name, f"{blocker} skipped: {prior.reason}"
                                          if prior.status == "skip" else f"blocked by {blocker}")
            else:
                fn = get_check(name)
                if fn is None:
                    result = CheckResult.skip(name, "not available in this kernelgrade")
                else:
                    try:
                        result = fn(ctx)
                    except UserError as err:
                        # Bad input (a reference that does not load, a project `check` cannot run
                        # at the level asked): `check PROJECT` stops with one line and exit 2; in an
                        # eval it is this trial's error, said as it is, never "internal error".
                        if ctx.case is None:
                            raise
                        result = CheckResult.error(name, str(err))
                    except Exception as err:  # a bug in kernelgrade, not the candidate's fault
                        log.exception("check %s crashed", name)
                        result = CheckResult.error(name, f"internal error: {type(err).__name__}: {err}")
        ctx.prior[name] = result
        results.append(result)
    return results


def extract_answer(case: Case, text: str, artifacts: Path) -> tuple[Path | None, list[Finding]]:
    """The project written out of a one-shot answer (None when the case has no kernel block,
    needs only markers, or the answer held no file), and extraction's findings."""
    if case.kernel is None or not any(n != "markers" for n in _with_dependencies(case.required_checks)):
        return None, []
    from harness.extract.answer import extract_to_workspace

    project_dir = artifacts / "project"
    extracted = extract_to_workspace(text, project_dir)
    return (project_dir if extracted.files else None), extracted.findings


def grade_project(case: Case, text: str, project_dir: Path | None, *, level: Level, device: Device,
                  artifacts: Path, options: GradeOptions | None = None,
                  extraction: list[Finding] | None = None) -> Grade:
    """Grade a project already on disk (agent mode's workspace, or an extracted answer) and
    `text` (what the markers read). Never raises for the candidate's faults."""
    required = case.required_checks
    extraction = list(extraction or [])
    options = options or GradeOptions()
    if options.reference is None and case.kernel is not None and case.kernel.reference:
        # The case's own reference file (KernelSpec.reference), for the checks that look one up.
        options = dataclasses.replace(options, reference=Path(case.kernel.reference))
    ctx = CheckContext(case=case, text=text, project_dir=project_dir, level=level,
                       device=device, artifacts=artifacts, options=options)
    ctx.state["extraction"] = extraction
    results = run_checks(ctx, _with_dependencies(required))
    return Grade(results=results, required=required, score=score(results, required, level),
                 level=level, device=device, extraction=extraction)


def _adapt_kernelbench(case: Case, text: str, artifacts: Path,
                       device: Device) -> tuple[Case, Path | None, list[Finding]]:
    """A KernelBench-format answer (ModelNew + load_inline) as a kernel-builder project
    (harness.kernelbench.adapt). A refusal is an error finding with the adapter's reason (the
    answer fails build_toml with it). An adapted CPU answer is graded without build_toml: its
    build.toml is kernelgrade's own, CPU-only, so the case's capabilities say nothing about it."""
    from harness.inputs.reference import op_reference_path
    from harness.kernelbench.adapt import AdaptRefused, adapt_answer

    assert case.kernel is not None
    reference = Path(case.kernel.reference) if case.kernel.reference else op_reference_path(case.kernel.op)
    got = adapt_answer(text, reference, artifacts / "project", device=device, shapes=case.kernel.shapes)
    if isinstance(got, AdaptRefused):
        return case, None, [Finding(severity="error", key="(answer)", reason=f"kernelbench answer: {got.reason}")]
    if device == "cpu":
        kernel = case.kernel.model_copy(update={"capabilities": [],
                                                "checks": [c for c in case.kernel.checks if c != "build_toml"]})
        case = case.model_copy(update={"kernel": kernel})
    return case, got.project, []


def grade_answer(case: Case, text: str, *, level: Level, device: Device, artifacts: Path,
                 options: GradeOptions | None = None, answer_format: str = "kernel-builder") -> Grade:
    """Grade one model answer for one case. Never raises for the candidate's faults.
    `answer_format="kernelbench"`: the answer is a ModelNew, adapted to a project first."""
    if answer_format == "kernelbench" and case.kernel is not None:
        case, project_dir, extraction = _adapt_kernelbench(case, text, artifacts, device)
    else:
        project_dir, extraction = extract_answer(case, text, artifacts)
    return grade_project(case, text, project_dir, level=level, device=device, artifacts=artifacts,
                         options=options, extraction=extraction)
