"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    """Two text cases whose marker the fixture OpenAI server says only with the skill."""
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [
        {"id": "cap", "input": "Which capability for H100?", "expected": {"contains": "9.0"}},
        {"id": "toml", "input": "Write the build.toml line for H100", "expected": {"contains": ["9.0"]}}]}))
    return path
