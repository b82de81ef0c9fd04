"""The scripted agent at compile level and at run level on the CPU: run_checks compiles the
workspace with nvcc (the error comes back with file:line), the fix passes, the trial passes,
in both arms. Compiles go through the content cache: a warm run reuses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.agent.conversation import step_from_json
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.agent.scripts import SKILL, FixAgent, broken_cu
from tests.cuda_helpers import needs_nvcc
from tests.fakes.agent_server import FakeAgentServer

pytestmark = [pytest.mark.slow, needs_nvcc]

NVCC_ERROR = 'rmsnorm_cuda/rmsnorm.cu:27: expected a ";"'


def _run(tmp_path: Path, checks: list[str], **kw) -> tuple[Store, str, FixAgent]:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{
        "id": "rms", "input": "Write an RMSNorm kernel.", "expected": {"contains": "9.0"},
        "kernel": {"op": "rmsnorm", "api": "rms_norm(input, weight, eps)", "checks": checks,
                   "shapes": [[7, 1000]], "dtypes": ["float32"]}}]}))
    agent = FixAgent({"rmsnorm_cuda/rmsnorm.cu": broken_cu()}, expect_error=NVCC_ERROR)
    store = Store()
    with FakeAgentServer(script=agent) as server:
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["fake-agent"],
                                        base_url=server.base_url, agent=True, concurrency=1, **kw), store)
        assert execute(run_id, store) == "finished"
    return store, run_id, agent


def _checks(store: Store, trial_id: int) -> list:
    steps = [step_from_json(r.body) for r in store.agent_steps(trial_id)]
    return [s for s in steps if s.role == "tool" and s.name == "run_checks"]


def test_scripted_agent_passes_at_compile_level(tmp_path: Path) -> None:
    store, run_id, agent = _run(tmp_path, ["build_toml", "compile"], level="compile")
    assert len(agent.seen_errors) == 2, agent.check_results  # both arms saw nvcc's error with file:line
    for trial in store.trials(run_id):
        first, second = _checks(store, trial.id)
        assert first.content.startswith("checks at level compile: FAIL") and NVCC_ERROR in first.content
        assert second.content.startswith("checks at level compile: PASS")
        assert "- compile: pass" in second.content
        assert trial.grade.level == "compile" and trial.grade.score.verdict == "pass", trial.grade.score
        assert trial.completion.stop_reason == "submitted"


def test_scripted_agent_passes_at_run_level_on_the_cpu(tmp_path: Path) -> None:
    store, run_id, agent = _run(tmp_path, ["build_toml", "compile", "run"], level="run", device="cpu")
    assert len(agent.seen_errors) == 2, agent.check_results
    for trial in store.trials(run_id):
        first, second = _checks(store, trial.id)
        assert NVCC_ERROR in first.content and "- run: skip: blocked by compile" in first.content
        assert second.content.startswith("checks at level run on cpu: PASS"), second.content
        assert "- run: pass" in second.content and "max abs error" in second.content
        assert trial.grade.level == "run" and trial.grade.device == "cpu"
        assert trial.grade.score.verdict == "pass", trial.grade.score
        run = next(r for r in trial.grade.results if r.name == "run")
        assert run.status == "pass" and run.device == "cpu"
