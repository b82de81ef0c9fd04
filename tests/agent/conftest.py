"""Fixtures for the agent-mode tests: a workspace in each arm."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.agent.workspace import Workspace

from tests.agent.agent_helpers import SKILL_FILES


@pytest.fixture
def ws_skill(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "trial-skill", SKILL_FILES)


@pytest.fixture
def ws_base(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "trial-base", None)
