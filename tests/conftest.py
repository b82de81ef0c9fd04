"""Shared test set-up: every test gets its own KERNELGRADE_HOME (runs database,
artifacts, config), while the compile cache is shared across tests and CI runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # One compile cache for the whole session (and across CI runs on this machine):
    # compiles are keyed by content, so reuse is safe.
    os.environ.setdefault("KERNELGRADE_CACHE", str(REPO / ".kgcache"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "kghome"
    monkeypatch.setenv("KERNELGRADE_HOME", str(home))
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return home
