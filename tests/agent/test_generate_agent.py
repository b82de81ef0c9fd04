"""`generate --agent`: the student phases are agent-mode eval runs (the SCRIPTED TEACHER FIXTURE
writes the skill and cases; a scripted agent that reads the skill and answers is the student)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.store.db import Store
from harness.workflows.generate import run_generate, start_generate
from harness.workflows.generate_log import linked_runs
from harness.workflows.generate_options import GenerateOptions
from tests.agent.scripts import turns_in
from tests.fakes.agent_server import Call, FakeAgentServer, Reply
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.teacher.scripted import ScriptedTeacher


def _student(body: dict) -> Reply:
    if turns_in(body) == 0:
        return Reply(calls=[Call("read_file", {"path": "skill/SKILL.md"})])
    read = body["messages"][-1]["content"]
    return Reply(text="Use cuda-capabilities 9.0." if "9.0" in read else "I do not know.")


def test_generate_agent_runs_its_student_phases_in_agent_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store()
    with FakeOpenAIServer(ScriptedTeacher()) as teacher, FakeAgentServer(script=_student) as students:
        opts = GenerateOptions(task="build H100 kernels with kernel-builder", teacher="fake-teacher",
                               students=["fake-student"], teacher_base_url=teacher.base_url,
                               eval_base_url=students.base_url, level="text", attempts=1, holdout_fraction=0.3,
                               iterations=0, agent=True, max_turns=3)
        run_id = start_generate(opts, store)
        run_generate(run_id, store)
    assert students.probes and students.requests  # asked once whether it takes tools, then used as an agent
    runs = linked_runs(store, run_id)
    assert runs and "holdout" in runs
    for eval_id in runs.values():
        run = store.get_run(eval_id)
        assert run.mode == "agent" and run.config["max_turns"] == 3 and "SKILL.md" in run.skill["files"]
        for t in store.trials(eval_id):
            assert t.status == "answered" and store.agent_steps(t.id), t.error
            assert t.completion.stop_reason == "final_message"
