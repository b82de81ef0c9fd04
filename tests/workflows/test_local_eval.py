"""A small real eval through the embedded local model (llama.cpp + SmolLM2-135M).

Asserts on what the pipeline stored and graded, never on the model's quality: a 135M
model's answers are whatever they are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store.db import Store
from tests.prereq import local_model_installed, missing

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [
        {"id": "cap", "input": "Which cuda-capabilities value targets H100? One line.", "expected": {"contains": "9.0"}},
        {"id": "kernel", "input": "Write the build.toml of a kernel-builder project named rmsnorm for H100.",
         "expected": {"contains": "9.0"},
         "kernel": {"op": "rmsnorm", "api": "rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor",
                    "checks": ["build_toml"]}},
    ]}))
    return path


def test_eval_through_the_embedded_model(tiny_cases: Path) -> None:
    if not local_model_installed():
        missing("the embedded model is not installed", "run scripts/setup.sh")
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli.main", "eval", str(REPO / "tests/fixtures/skills/valid-skill"),
         "--cases", str(tiny_cases), "--model", "local", "--max-tokens", "48", "--level", "text", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    store = Store()
    (run,) = store.list_runs()
    trials = store.trials(run["id"])
    assert len(trials) == 4  # 2 cases x 2 arms x 1 run
    for t in trials:
        assert t.status == "answered", t.error
        c = t.completion
        assert c.provider == "local" and c.output_tokens > 0 and c.input_tokens > 0
        assert c.model == "smollm2-135m-instruct-q4_1"  # the served model's id, not the alias
        assert t.grade is not None and t.grade.score.verdict in ("pass", "fail")
        names = [r.name for r in t.grade.results]
        assert names[0] == "markers"
        if t.case_id == "kernel":
            # the build_toml check ran on whatever the model wrote (most likely: no files)
            assert "build_toml" in names
    with_skill = [t for t in trials if t.arm == "with_skill"]
    assert all("<skill>" in t.prompt["user"] for t in with_skill)
    assert report  # the JSON report was printed
