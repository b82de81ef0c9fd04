"""The embedded SmolLM2 server in agent mode, end to end through `eval --agent`: native tool calls
through llama.cpp's chatml-function-calling format. What the 135M model writes does not matter;
that tool calls come back, are run, and every step is stored and graded does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.agent.conversation import AssistantStep, step_from_json
from harness.agent.providers import OpenAIAgentClient
from harness.agent.workspace import Workspace
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.agent.agent_helpers import SKILL_FILES, mini_loop, restored
from tests.agent.scripts import SKILL
from tests.prereq import local_model_installed, missing

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_model() -> None:
    if not local_model_installed():
        missing("the embedded model is not installed", "bash scripts/setup.sh")


def test_embedded_model_runs_the_agent_loop(tmp_path: Path) -> None:
    from harness.models.local_server import TOOL_CHAT_FORMAT, LocalServer

    ws = Workspace.create(tmp_path / "trial", SKILL_FILES)
    stored: list[str] = []
    with LocalServer(log_path=tmp_path / "server.log", timeout_s=120, chat_format=TOOL_CHAT_FORMAT) as server:
        client = OpenAIAgentClient(server.model_id, provider="local", base_url=server.base_url,
                                   timeout_s=600, tool_results_as_user=True)
        conv, how = mini_loop(client, ws, lambda level: ("checks: FAIL", {"verdict": "fail"}),
                              system="You are a CUDA engineer. Use the tools; call submit when done.",
                              task="Read skill/SKILL.md, then write relu.cu with a ReLU kernel, then submit.",
                              max_turns=3, stored=stored)
    assert how in ("submitted", "final_message", "ran_out")
    steps = [s for s in conv.steps if isinstance(s, AssistantStep)]
    assert steps and all(s.model for s in steps)
    assert sum(len(s.tool_calls) for s in steps) >= 1, "no native tool call came back"
    assert all(s.usage.input_tokens > 0 for s in steps)
    assert restored(stored, conv.system).steps == conv.steps


def test_eval_agent_with_the_embedded_model_end_to_end(tmp_path: Path) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"id": "cap", "input": "Which CUDA capability string is H100? "
                                            "Write it to answer.txt with write_file, then call submit.",
                                            "expected": {"contains": "9.0"}}]}))
    store = Store()
    run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["local"], level="text", agent=True,
                                    max_turns=3, max_tokens=256, timeout_s=600,
                                    # Greedy: llama-cpp-python's chatml-function-calling ignores max_tokens
                                    # in auto mode, and a sampled 135M model can ramble to the context's end.
                                    temperature=0.0), store)
    assert execute(run_id, store) == "finished"
    trials = store.trials(run_id)
    assert len(trials) == 2
    calls = 0
    for t in trials:
        assert t.status == "answered" and t.grade is not None, t.error
        assert t.completion.stop_reason in ("submitted", "final_message", "ran_out_turns", "ran_out_context")
        rows = store.agent_steps(t.id)
        steps = [step_from_json(r.body) for r in rows]
        assert [r.seq for r in rows] == list(range(len(rows))) and steps[-1].role == "end"
        turns = [s for s in steps if s.role == "assistant"]
        assert len(turns) <= 3 and t.calls == len(turns)
        assert turns or t.completion.stop_reason == "ran_out_context"
        calls += sum(len(s.tool_calls) for s in turns)
        # Every call got its result stored, run or refused.
        answered = {s.call_id for s in steps if s.role == "tool"}
        assert answered == {c.id for s in turns for c in s.tool_calls}
    assert calls >= 1, "no native tool call came back from the embedded model"
