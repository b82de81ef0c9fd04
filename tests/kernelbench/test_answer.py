"""KernelBench-format answers: load_inline read statically, the adapter's project, and the
checks that need no build (build_toml, scan) on it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.checks.base import CheckContext, GradeOptions
from harness.checks.build_toml import check_build_toml
from harness.checks.scan import check_scan
from harness.cli.main import main
from harness.inputs.cases import load_cases
from harness.kernelbench.adapt import AdaptedAnswer, AdaptRefused, adapt_answer
from harness.kernelbench.adapt_cpp import binding_cpp, signature_of
from harness.kernelbench.answer import NotAdaptable, extract_source, read_inline_calls, rewrite_source, \
    sources_digest
from tests.cuda_helpers import needs_nvcc
from tests.kernelbench.conftest import ANSWERS, reference_of

HONEST = (ANSWERS / "kernelbench" / "linear_load_inline.py").read_text()
CHEAT = (ANSWERS / "kernelbench" / "linear_calls_torch.py").read_text()
MINIMAL = '''\
import textwrap
from torch.utils.cpp_extension import load_inline as li

HEADER = "#include <cmath>\\n"
BODY = textwrap.dedent("""
    torch::Tensor twice(torch::Tensor x) { return x * 2; }
""")
NAME = "twice"
ext = li(NAME, HEADER + BODY, functions=[f"{NAME}"])

class ModelNew:
    pass
'''


def test_reads_load_inline_without_running_the_answer() -> None:
    (call,) = read_inline_calls(MINIMAL)
    assert call.name == "twice" and call.functions == ("twice",)
    assert call.cpp_sources == ("#include <cmath>\n\ntorch::Tensor twice(torch::Tensor x) { return x * 2; }\n",)
    first, second = read_inline_calls(HONEST)
    assert (first.name, first.functions, first.extra_cflags) == ("linear_ext", ("linear_forward",), ("-O3",))
    assert second.functions == ("scale_rows",) and first.digest == sources_digest(first.cpp_sources[0], None)


@pytest.mark.parametrize("source, why", [
    ("class ModelNew: pass\n", "no load_inline call"),
    ("from torch.utils.cpp_extension import load_inline\nsrc = open('k.cpp').read()\n"
     "e = load_inline('k', src, functions=['f'])\nclass ModelNew: pass\n", "not a literal"),
    ("from torch.utils.cpp_extension import load_inline\ne = load_inline('k', 'int f();')\nclass ModelNew: pass\n",
     "without functions="),
    ("from torch.utils.cpp_extension import load_inline\ne = load_inline('k', 'PYBIND11_MODULE(x, m) {}', "
     "functions=['f'])\nclass ModelNew: pass\n", "PYBIND11_MODULE"),
    ("from torch.utils.cpp_extension import load\ne = load('k', ['k.cpp'])\nclass ModelNew: pass\n",
     "only load_inline"),
    ("x = 1\n", "defines no class ModelNew"),
])
def test_answers_it_cannot_adapt_say_why(source: str, why: str) -> None:
    with pytest.raises(NotAdaptable, match=why):
        read_inline_calls(source)


def test_extracts_the_model_new_block_from_a_reply() -> None:
    reply = f"Here is my answer.\n\n```python\nprint('draft')\n```\n\nFinal:\n```python\n{HONEST}```\nDone."
    assert extract_source(reply).strip() == HONEST.strip()
    assert extract_source(HONEST) == HONEST
    assert extract_source("no code at all") is None


def test_rewrite_binds_load_inline_to_the_shim_and_keeps_the_rest() -> None:
    text = rewrite_source(HONEST)
    assert "from torch.utils.cpp_extension import load_inline" not in text
    assert "from ._kg_inline import load_inline\n" in text
    assert text.splitlines()[0] == "from ._kg_inline import load_inline as _kg_load_inline"
    assert "# A second extension, to show several load_inline calls" in text  # comments kept
    assert "ext = _kg_load_inline(" in rewrite_source("import torch.utils.cpp_extension as ce\n"
                                                      "ext = ce.load_inline('a', 'x', functions=['f'])\n")


def test_binding_wraps_functions_in_schema_types() -> None:
    assert signature_of("f", "torch::Tensor f(const torch::Tensor& x, float a, int n);") == \
        ("at::Tensor", ["at::Tensor", "double", "int64_t"])
    assert signature_of("g", "std::tuple<torch::Tensor, torch::Tensor> g(torch::Tensor x) {") == \
        ("std::tuple<at::Tensor, at::Tensor>", ["at::Tensor"])
    assert signature_of("h", "MyType h(torch::Tensor x);") is None
    calls = read_inline_calls(HONEST)
    cpp = binding_cpp(calls)
    assert 'ops.def("scale_rows(Tensor a0, float a1, int a2) -> Tensor");' in cpp
    assert "ops.impl(\"linear_forward\", KG_BACKEND, TORCH_FN(kg_wrap_linear_forward));" in cpp
    weird = dataclasses.replace(calls[0], functions=("mystery",), cpp_sources=("Foo mystery(Bar b);",))
    assert 'ops.def("mystery", &mystery);' in binding_cpp([weird])


def _ctx(imported, project: Path, case_id: str) -> CheckContext:
    case = next(c for c in load_cases(imported.cases_path) if c.id == case_id)
    # A KernelBench CPU answer has no CUDA kernel: grade it without the case's GPU targets.
    case = case.model_copy(update={"kernel": case.kernel.model_copy(update={"capabilities": []})})
    return CheckContext(case=case, text="", project_dir=project, level="compile", device="cpu",
                        artifacts=project.parent / "art", options=GradeOptions(reference=reference_of(imported, case)))


def test_adapted_project_passes_build_toml_and_scan(imported, tmp_path: Path) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-003-linear")
    got = adapt_answer(f"```python\n{HONEST}```", reference_of(imported, case), tmp_path / "project")
    assert isinstance(got, AdaptedAnswer) and got.functions == ["linear_forward", "scale_rows"]
    assert got.api == "linear"
    pkg = tmp_path / "project" / "torch-ext" / "kb_answer"
    assert {p.name for p in pkg.iterdir()} == {"__init__.py", "_kg_answer.py", "_kg_inline.py", "_kg_problem.py"}
    problem = (pkg / "_kg_problem.py").read_text()
    assert "STATE_NAMES = ('fc.weight', 'fc.bias')" in problem and "(512, 511)" in problem
    for check in (check_build_toml, check_scan):
        result = check(_ctx(imported, tmp_path / "project", "kb-l1-003-linear"))
        assert result.status == "pass", (result.reason, [f.reason for f in result.findings])
        assert not [f for f in result.findings if f.severity == "warning"]


def test_a_kernelbench_answer_that_calls_torch_fails_the_scan(imported, tmp_path: Path) -> None:
    """KernelBench's harness only compares outputs, so this answer counts as correct there."""
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-003-linear")
    assert isinstance(adapt_answer(CHEAT, reference_of(imported, case), tmp_path / "project"), AdaptedAnswer)
    result = check_scan(_ctx(imported, tmp_path / "project", "kb-l1-003-linear"))
    assert result.status == "fail"
    assert "calls the PyTorch op it replaces" in result.reason and "_kg_answer.py" in result.reason


def test_adapt_refuses_with_a_reason_and_the_cli_exits_2(imported, tmp_path: Path) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-003-linear")
    ref = reference_of(imported, case)
    assert adapt_answer("I cannot do this.", ref, tmp_path / "p") == \
        AdaptRefused("no Python code defining class ModelNew in the answer")
    answer = tmp_path / "answer.py"
    answer.write_text("class ModelNew: pass\n")
    assert main(["cases", "adapt-kernelbench", str(answer), "--reference", str(ref), "-o", str(tmp_path / "p")]) == 2
    answer.write_text(HONEST)
    assert main(["cases", "adapt-kernelbench", str(answer), "--reference", str(ref), "-o", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "build.toml").is_file()


@needs_nvcc
@pytest.mark.slow
def test_a_cuda_load_inline_answer_compiles_for_sm90(imported, tmp_path: Path, capsys) -> None:
    """KernelBench's CUDA answers (load_inline with cuda_sources) become a kernel-builder project with
    a CUDA kernel; without a GPU it is graded as far as nvcc goes: build.toml, compile for sm_90, SASS."""
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-001-leakyrelu")
    got = adapt_answer((ANSWERS / "kernelbench" / "leakyrelu_cuda.py").read_text(), reference_of(imported, case),
                       tmp_path / "project", device="cuda")
    assert isinstance(got, AdaptedAnswer) and got.functions == ["leaky_relu_cuda"]
    assert 'backend = "cuda"' in (tmp_path / "project" / "build.toml").read_text()
    assert main(["check", str(tmp_path / "project"), "--level", "compile", "--device", "cuda", "--json"]) == 0
    by = {r["name"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert by["build_toml"]["status"] == "pass" and by["compile"]["status"] == "pass", by
    assert by["sass"]["status"] == "pass", by["sass"]  # the kernel's own body is in the cubin
