"""The task text in KernelBench's answer format."""

from __future__ import annotations

import pytest

from harness.inputs.cases import Case, load_cases
from harness.kernelbench.answer import read_inline_calls
from harness.kernelbench.prompt import EXAMPLE, kernelbench_task_text, program_of


def test_task_text_asks_for_model_new_with_load_inline(imported) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-003-linear")
    cpu = kernelbench_task_text(case, "cpu")
    assert program_of(case) in cpu and "self.fc = nn.Linear(in_features, out_features)" in cpu
    assert "Name your optimized architecture ModelNew" in cpu and "load_inline" in cpu
    assert "graded on the CPU" in cpu and "cuda_sources=..." not in cpu.split("Optimize")[1]
    cuda = kernelbench_task_text(case, "cuda")
    assert "CUDA operators" in cuda and "graded on the CPU" not in cuda
    with pytest.raises(ValueError, match="no ```python block"):
        program_of(Case(id="x", input="no program"))


def test_the_example_answer_is_itself_adaptable() -> None:
    answer = EXAMPLE.split("an answer is\n\n```python\n")[1].split("```")[0]
    (call,) = read_inline_calls(answer)
    assert call.functions == ("add_cpu",)
