"""Linking and loading CUDA extensions without a GPU (harness/build/load_probe.py).

With a CUDA build of torch (.venv-cuda, made by `bash scripts/setup.sh --cuda-torch`),
the compile check links every reference project's objects and imports the result in
a sandboxed child: each op must register a CUDA kernel. The two load-only bad projects
must fail for the reason in their EXPECTED.txt, which a compile alone cannot see.
With the CPU torch of .venv the check must say it did not link, never claim it did.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.common.paths import repo_root
from harness.build.load_probe import judge_load
from tests.cuda_helpers import needs_nvcc
from tests.expected import read_expected
from tests.prereq import missing

REFS = repo_root() / "kernels_reference"
OPS = sorted(p.name for p in REFS.iterdir() if (p / "reference.py").is_file() and (p / "build.toml").is_file())
LOAD_BAD = sorted(p for p in (REFS / "bad").iterdir() if "cuda-torch" in read_expected(p).needs)
CUDA_PY = repo_root() / ".venv-cuda" / "bin" / "python"


@pytest.fixture
def cuda_py() -> Path:
    """The CUDA-torch interpreter; in CI (CI=true) its absence fails instead of skipping."""
    if not CUDA_PY.exists():
        missing("no CUDA build of torch in .venv-cuda", "bash scripts/setup.sh --cuda-torch")
    return CUDA_PY


def test_reference_ops_and_load_only_bad_projects_are_found() -> None:
    assert len(OPS) >= 8 and "rmsnorm" in OPS and "matmul" in OPS
    assert {p.name for p in LOAD_BAD} == {"undefined_launcher", "cpu_only_registration"}


@pytest.mark.parametrize("data, ok, reason", [
    ({"torch": "2.14.1", "import_error": "ImportError: /x/_e.so: undefined symbol: _Z4reluRN2at6TensorERKS0_"},
     False, "undefined symbol relu(at::Tensor&, at::Tensor const&)"),
    ({"torch": "2.14.1", "import_error": "SyntaxError: invalid syntax (__init__.py, line 3)"},
     False, "the package does not import: SyntaxError"),
    ({"torch": "2.14.1", "ops": {}}, False, "registered no op under _e::"),
    ({"torch": "2.14.1", "ops": {"_e::relu": ["CPU"], "_e::neg": []}}, False,
     "no op has a CUDA kernel registered (neg: no kernel, relu: CPU)"),
    ({"torch": "2.14.1", "ops": {"_e::relu": ["CUDA"]}, "api_callable": False}, False, "no callable relu()"),
    ({"torch": "2.14.1", "ops": {"_e::relu": ["CUDA"], "_e::h": ["CPU"]}, "api_callable": True}, True,
     "loaded against torch 2.14.1: h [CPU], relu [CUDA]"),
])
def test_judge_load(data: dict, ok: bool, reason: str) -> None:
    report = judge_load(data, namespace="_e", api="relu")
    assert report.ok is ok and reason in report.reason, report.reason


@needs_nvcc
@pytest.mark.slow
def test_cpu_torch_says_it_did_not_link(capsys) -> None:
    from harness.cli.main import main

    assert main(["check", str(REFS / "rmsnorm"), "--level", "compile", "--device", "cuda", "--json"]) == 0
    compile_ = next(r for r in json.loads(capsys.readouterr().out)["results"] if r["name"] == "compile")
    assert compile_["status"] == "pass" and "linked and loaded" not in compile_["reason"]
    assert compile_["reason"].endswith("; not linked or loaded (torch here is a CPU build)")
    assert compile_["metrics"]["loaded"] is False
    note = next(f for f in compile_["findings"] if f["key"] == "link")
    assert "not linked or loaded" in note["reason"] and "CPU build" in note["reason"]


def _check_with_cuda_torch(cuda_py: Path, project: Path, tmp_path: Path) -> tuple[int, dict]:
    env = {**os.environ, "KERNELGRADE_HOME": str(tmp_path / "home")}
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run([str(cuda_py), "-m", "harness.cli.main", "check", str(project), "--level", "compile",
                          "--device", "cuda", "--json"], capture_output=True, text=True, env=env,
                         cwd=repo_root(), timeout=1800)
    try:
        return out.returncode, json.loads(out.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON (exit {out.returncode}): {out.stderr[-2000:]}")


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_reference_op_links_and_loads_with_cuda_torch(cuda_py: Path, op: str, tmp_path: Path) -> None:
    code, data = _check_with_cuda_torch(cuda_py, REFS / op, tmp_path)
    compile_ = next(r for r in data["results"] if r["name"] == "compile")
    assert code == 0 and compile_["status"] == "pass", compile_
    assert compile_["metrics"]["loaded"] is True and "linked and loaded without a GPU" in compile_["reason"]
    load = next(f for f in compile_["findings"] if f["key"] == "load")
    assert "+cu" in load["reason"] and "[CUDA]" in load["reason"], load


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("project", LOAD_BAD, ids=[p.name for p in LOAD_BAD])
def test_load_only_bad_project_fails_with_cuda_torch(cuda_py: Path, project: Path, tmp_path: Path) -> None:
    expected = read_expected(project).reason
    code, data = _check_with_cuda_torch(cuda_py, project, tmp_path)
    compile_ = next(r for r in data["results"] if r["name"] == "compile")
    assert code == 1 and compile_["status"] == "fail", compile_
    assert compile_["reason"].startswith("load: ") and expected in compile_["reason"], (expected, compile_["reason"])
