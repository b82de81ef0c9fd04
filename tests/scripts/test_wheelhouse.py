"""scripts/wheelhouse.py: the wheels a GPU node without network needs, resolved for the
node's Python, never torch, triton or NVIDIA's CUDA wheels (the node has its own)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.common.paths import repo_root

SCRIPT = repo_root() / "scripts" / "wheelhouse.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # resolves against the package index
def test_dry_run_resolves_for_python_312_without_torch_or_cuda_wheels(tmp_path) -> None:
    out = _run(str(tmp_path / "w"), "--python-version", "3.12", "--have", "numpy", "scipy", "--dry-run")
    assert out.returncode == 0, out.stderr
    names = {line.split("==")[0] for line in out.stdout.split()}
    assert {"kernels", "pydantic", "openai", "anthropic", "tenacity", "skills-ref", "pytest"} <= names
    assert not {n for n in names if n in ("torch", "triton", "numpy", "scipy") or n.startswith("nvidia-")}, names
    assert all("==" in line for line in out.stdout.split())  # exact pins: the node gets what was resolved
    assert not (tmp_path / "w").exists()


def test_unknown_extra_is_one_clear_line(tmp_path) -> None:
    out = _run(str(tmp_path / "w"), "--extras", "dev,gpu", "--dry-run")
    assert out.returncode != 0 and "no extra 'gpu' in pyproject.toml" in out.stderr
    assert "Traceback" not in out.stderr
