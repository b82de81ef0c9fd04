"""The shipped case files, the upskill blog's example, and how malformed case files are reported."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from harness.inputs.cases import load_cases, parse_cases
from harness.common.errors import UserError

ROOT = Path(__file__).parents[2]
CASES = ROOT / "cases"
REFERENCES = ROOT / "kernels_reference"
BLOG = Path(__file__).parents[1] / "fixtures" / "upskill_blog_cases.json"
CAPABILITY = re.compile(r"^\d+\.\d+[af]?(\+PTX)?$")  # kernel-builder's form, e.g. "9.0", "9.0a", "9.0+PTX"


def _case_files() -> list[Path]:
    return sorted(CASES.glob("*.json"))


def _reference(op: str):
    path = REFERENCES / op / "reference.py"
    assert path.is_file(), f"kernels_reference/{op}/reference.py does not exist"
    spec = importlib.util.spec_from_file_location(f"_kg_ref_{op}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _api_params(api: str) -> list[str]:
    """Parameter names of "name(a: T, b: T) -> R"."""
    inside = api.split("(", 1)[1].rsplit(")", 1)[0]
    return [p.split(":", 1)[0].strip() for p in inside.split(",") if p.strip()]


def test_case_files_exist():
    assert {p.name for p in _case_files()} >= {"h100-kernels.json", "h100-text.json", "smoke.json"}


@pytest.mark.parametrize("path", _case_files(), ids=lambda p: p.name)
def test_every_case_file_loads(path):
    cases = load_cases(path)
    assert cases
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        assert case.input.strip()
        assert case.assertion_count > 0, f"{path.name}: {case.id} asserts nothing"


def test_blog_example_loads_unchanged():
    """The upskill blog's case file, verbatim, is a valid kernelgrade case file."""
    data = json.loads(BLOG.read_text())
    assert list(data) == ["cases"] and all(set(c) == {"input", "expected"} for c in data["cases"])
    cases = load_cases(BLOG)
    assert [c.input for c in cases] == [
        "Create a build.toml for a CUDA kernel targeting H100",
        "Write a CUDA kernel with async memory copy for H100",
    ]
    assert [c.expected.contains for c in cases] == [["9.0"], ["__CUDA_ARCH__ >= 900"]]
    assert all(c.kernel is None and c.expected.not_contains == [] for c in cases)
    assert all(c.required_checks == ["markers"] and c.assertion_count == 1 for c in cases)


def test_contains_as_a_list_is_accepted_too():
    cases = parse_cases({"cases": [{"input": "x", "expected": {"contains": ["9.0", "edition = 5"]}}]})
    assert cases[0].expected.contains == ["9.0", "edition = 5"]


def test_text_suite_stays_loadable_by_upskill():
    """upskill 0.1.0 (PyPI) builds TestCase(input, context, expected: dict) and grades with
    `expected["contains"].lower() in output.lower()`: so only input/expected, and contains a string."""
    data = json.loads((CASES / "h100-text.json").read_text())
    assert len(data["cases"]) >= 10
    for index, case in enumerate(data["cases"]):
        assert set(case) == {"input", "expected"}, index
        assert set(case["expected"]) == {"contains"} and isinstance(case["expected"]["contains"], str), index


def test_smoke_suite_shape():
    cases = load_cases(CASES / "smoke.json")
    assert len(cases) == 3
    kernel_cases = [c for c in cases if c.kernel]
    assert len(kernel_cases) == 1 and kernel_cases[0].kernel.checks == ["build_toml"]


KERNEL_CASES = load_cases(CASES / "h100-kernels.json")


def test_kernel_suite_size_and_coverage():
    assert len(KERNEL_CASES) >= 12
    assert all(c.kernel is not None for c in KERNEL_CASES)
    ops = {c.kernel.op for c in KERNEL_CASES}
    assert {"rmsnorm", "gelu_tanh", "geglu", "softmax"} <= ops
    assert {"layernorm_adaln", "rotary", "residual_rmsnorm"} <= ops
    assert sum(c.kernel.op == "matmul" for c in KERNEL_CASES) >= 2  # compute-bound: bf16 GEMMs


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c.id)
def test_kernel_case_is_consistent(case):
    k = case.kernel
    assert all(CAPABILITY.match(c) for c in k.capabilities), k.capabilities
    assert k.checks[:2] == ["build_toml", "compile"]
    assert k.shapes, "cases give real-model shapes explicitly"
    assert k.atol is not None and k.rtol is not None
    if "HGMMA" in k.sass.require:  # wgmma exists only on sm_90a
        assert k.capabilities == ["9.0a"]
    if k.min_speedup is not None:
        assert "speedup" in k.checks
    if k.sass.require or k.sass.forbid:
        assert "sass" in k.checks


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c.id)
def test_kernel_case_matches_its_reference(case):
    """The op's reference exists whenever the case runs code, its API name matches, and its
    input generator accepts every shape and dtype with as many arguments as the case's
    signature names."""
    k = case.kernel
    if not (REFERENCES / k.op / "reference.py").is_file():
        # Graded by build.toml, compile and SASS only: nothing to compare against.
        assert not {"run", "speedup"} & set(k.checks), f"{case.id}: run needs kernels_reference/{k.op}"
        return
    ref = _reference(k.op)
    assert k.api_name == ref.API
    assert set(k.dtypes) <= set(ref.DTYPES)
    params = _api_params(k.api)
    gen = torch.Generator().manual_seed(0)
    for shape in k.shapes:
        args = ref.make_inputs(tuple(shape), k.dtypes[0], gen)
        assert len(args) == len(params), (shape, params)


def test_most_kernel_cases_run_against_a_reference():
    running = [c for c in KERNEL_CASES if "run" in c.kernel.checks]
    assert len(running) >= 12
    assert all((REFERENCES / c.kernel.op / "reference.py").is_file() for c in running)


# --- malformed case files: file, case index and what is wrong ---------------------


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_cases(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('{"cases": [', ["invalid JSON at line 1"]),
        ('{"tests": []}', ['"cases" list']),
        ('{"cases": []}', ["no cases"]),
        ('{"cases": [{"input": "a"}, 3]}', ["case 1", "expected an object"]),
        ('{"cases": [{"input": "a"}, {"expected": {"contains": "x"}}]}', ["case 1", "input", "Field required"]),
        ('{"cases": [{"input": "a", "expected": {"contains": 9}}]}', ["case 0", "expected.contains"]),
        ('{"cases": [{"input": "a", "kernel": {"op": "rmsnorm"}}]}', ["case 0", "kernel.api", "Field required"]),
        ('{"cases": [{"input": "a", "kernel": {"op": "x", "api": "f()", "colour": 1}}]}', ["case 0", "kernel.colour"]),
        ('{"cases": [{"input": "a", "kernel": {"op": "x", "api": "f()", "checks": ["bogus"]}}]}',
         ["case 0", "kernel.checks", "bogus"]),
        ('{"cases": [{"id": "a", "input": "a"}, {"id": "a", "input": "b"}]}', ["case 1", "duplicate id 'a'", "case 0"]),
    ],
)
def test_malformed_case_files_say_where_and_what(tmp_path, text, fragments):
    message = _error(tmp_path, text)
    for fragment in fragments:
        assert fragment in message, message


def test_missing_case_file(tmp_path):
    with pytest.raises(UserError, match="no such case file"):
        load_cases(tmp_path / "nope.json")
