"""Imported KernelBench cases graded end to end on the CPU by the existing run check: honest
answers pass, cheating ones fail for their reason, and a KernelBench-format answer
(ModelNew with load_inline C++ sources) is adapted, built and graded like any project.

Three CPU builds in all (each about 20-60 s cold, cached by content afterwards): one project
holds the honest answers to four cases, one the cheats, plus the adapted answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.base import CheckContext, GradeOptions
from harness.checks.run import check_run
from harness.inputs.cases import load_cases
from harness.kernelbench.adapt import AdaptedAnswer, adapt_answer
from tests.kernelbench.conftest import ANSWERS, reference_of

CASES = ["kb-l1-001-leakyrelu", "kb-l1-002-sum-reduction-over-a-dimension", "kb-l1-003-linear",
         "kb-l2-001-gemm-relu"]
API = {"kb-l1-001-leakyrelu": "leakyrelu", "kb-l1-002-sum-reduction-over-a-dimension":
       "sum_reduction_over_a_dimension", "kb-l1-003-linear": "linear", "kb-l2-001-gemm-relu": "gemm_relu"}
CHEATS = dict(line.split(": ", 1) for line in (ANSWERS / "cheat_cpu" / "EXPECTED.txt").read_text().splitlines()
              if line.strip())


def _grade(imported, case_id: str, project: Path, artifacts: Path):
    case = next(c for c in load_cases(imported.cases_path) if c.id == case_id)
    ctx = CheckContext(case=case, text="", project_dir=project, level="run", device="cpu", artifacts=artifacts,
                       options=GradeOptions(reference=reference_of(imported, case)))
    return check_run(ctx)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASES)
def test_honest_cpu_answer_passes(imported, case_id: str, tmp_path: Path) -> None:
    result = _grade(imported, case_id, ANSWERS / "honest_cpu", tmp_path / "art")
    assert result.status == "pass", (result.reason, [f.reason for f in result.findings])
    assert result.metrics["calls"] == 4  # two CPU shapes, plus fresh-input repeats of both
    assert result.metrics["shapes"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASES)
def test_cheating_answer_fails_for_its_reason(imported, case_id: str, tmp_path: Path) -> None:
    result = _grade(imported, case_id, ANSWERS / "cheat_cpu", tmp_path / "art")
    assert result.status == "fail"
    assert CHEATS[API[case_id]] in result.reason, (result.reason, [f.reason for f in result.findings])


@pytest.mark.slow
def test_kernelbench_load_inline_answer_is_graded_on_cpu(imported, tmp_path: Path) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-003-linear")
    text = (ANSWERS / "kernelbench" / "linear_load_inline.py").read_text()
    adapted = adapt_answer(text, reference_of(imported, case), tmp_path / "project")
    assert isinstance(adapted, AdaptedAnswer)
    result = _grade(imported, case.id, tmp_path / "project", tmp_path / "art")
    assert result.status == "pass", (result.reason, [f.reason for f in result.findings])
    assert result.metrics["calls_ok"] == result.metrics["calls"] == 4
