"""Shared test set-up: every test gets its own KERNELGRADE_HOME (runs database,
artifacts, config), while the compile cache (KERNELGRADE_CACHE, else the user cache
dir) is shared across tests and across CI runs on the same machine: compiles are keyed
by content, so reuse is safe and a warm CI run skips them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "kghome"
    monkeypatch.setenv("KERNELGRADE_HOME", str(home))
    monkeypatch.setenv("KERNELGRADE_DOTENV", "0")  # a developer's .env must not leak keys into tests
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def require_nvcc() -> None:
    """For tests marked `needs_nvcc` (tests/cuda_helpers.py)."""
    from harness.build.toolchain import find_nvcc
    from tests.prereq import missing

    if find_nvcc() is None:
        missing("nvcc not found", "put the CUDA toolkit on PATH or set CUDA_HOME")
