"""`eval --answer-format kernelbench` as grading sees it: harness.scoring.grade.grade_answer takes a
KernelBench-format reply (ModelNew + load_inline C++ sources) for an imported case, adapts it and
runs the case's checks on the CPU, with the case's own reference file found from the case alone
(no --reference). One CPU build, cached by content with test_grading_cpu's."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.inputs.cases import load_cases
from harness.scoring.grade import grade_answer
from tests.kernelbench.conftest import ANSWERS


def _case(imported, case_id: str):
    case = next(c for c in load_cases(imported.cases_path) if c.id == case_id)
    assert case.kernel is not None and case.kernel.reference is not None  # found without --reference
    return case


@pytest.mark.slow
def test_a_load_inline_reply_is_graded_through_to_speedup_on_cpu(imported, tmp_path: Path) -> None:
    case = _case(imported, "kb-l1-003-linear")
    text = "Here is my kernel:\n```python\n" + (ANSWERS / "kernelbench" / "linear_load_inline.py").read_text() + "```\n"
    grade = grade_answer(case, text, level="run", device="cpu", artifacts=tmp_path, answer_format="kernelbench")
    by = {r.name: r for r in grade.results}
    assert "build_toml" not in grade.required  # the adapted CPU project's build.toml is kernelgrade's own
    assert by["scan"].status == "pass" and by["run"].status == "pass", [(r.name, r.reason) for r in grade.results]
    assert by["run"].metrics["calls_ok"] == by["run"].metrics["calls"] == 4
    assert by["speedup"].status == "pass" and by["speedup"].metrics["speedup"] > 0, by["speedup"].reason
    assert grade.score.verdict == "pass"


def test_a_reply_with_no_model_new_fails_with_the_adapter_s_reason(imported, tmp_path: Path) -> None:
    case = _case(imported, "kb-l1-003-linear")
    grade = grade_answer(case, "I cannot write this kernel.", level="run", device="cpu", artifacts=tmp_path,
                         answer_format="kernelbench")
    assert grade.score.verdict == "fail"
    assert any("kernelbench answer: no Python code defining class ModelNew" in f.reason for f in grade.extraction)
