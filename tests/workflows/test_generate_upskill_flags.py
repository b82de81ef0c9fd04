"""upskill's generate options typed with `kernelgrade generate`: -e/--example, --test-gen-model,
--no-eval, --runs-dir / --log-runs. Teacher and student are the SCRIPTED TEACHER FIXTURE
(tests/fixtures/teacher/) and a scripted student, served by the OpenAI-protocol FIXTURE server
(tests/fakes/openai_server.py): canned answers, not model output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.common.errors import UserError
from harness.store.db import Store
from harness.workflows.generate import run_generate, start_generate
from harness.workflows.generate_log import linked_runs, teacher_calls
from harness.workflows.generate_options import GenerateOptions
from harness.workflows.upskill_import import read_batch
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.teacher.scripted import ScriptedTeacher, echo_student, kind_of

REPO = Path(__file__).resolve().parents[2]
TASK = "build H100 kernels with kernel-builder"
NAME = "build-h100-kernels-with-kernel-builder"
EXAMPLES = ["capability for H100 -> 9.0", "arch guard for Hopper -> __CUDA_ARCH__ >= 900"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # skills/, cases/ and runs/ land here


def _opts(teacher_url: str, student_url: str, **kw) -> GenerateOptions:
    base = dict(task=TASK, teacher="fake-teacher", students=["fake-student"], teacher_base_url=teacher_url,
                eval_base_url=student_url, runs=1, level="text", attempts=1, holdout_fraction=0.3)
    return GenerateOptions(**(base | kw))


def _cli(teacher: FakeOpenAIServer, student: FakeOpenAIServer, *extra: str) -> int:
    return main(["generate", TASK, "-m", "fake-teacher", "--base-url", teacher.base_url, "--student", "fake-student",
                 "--eval-base-url", student.base_url, "--level", "text", "--holdout-fraction", "0.3", *extra])


def _user(body: dict) -> str:
    return body["messages"][-1]["content"]


def test_no_eval_writes_the_skill_and_calls_no_student(tmp_path: Path, capsys) -> None:
    teacher = ScriptedTeacher()
    with FakeOpenAIServer(teacher) as ts, FakeOpenAIServer(echo_student) as ss:
        assert _cli(ts, ss, "--no-eval", "--runs-dir", str(tmp_path / "logs")) == 0
        assert ss.requests == []  # no student phase
    assert [k for k, _ in teacher.prompts] == ["skill"]  # no cases, no refinement
    skill = tmp_path / "skills" / NAME
    assert (skill / "SKILL.md").is_file() and not (tmp_path / "cases").exists()
    meta = json.loads((skill / "skill_meta.json").read_text())
    assert meta["tests"] == [] and meta["metadata"]["kernelgrade"]["evaluated"] is False
    assert meta["metadata"]["test_pass_rate"] is None
    captured = capsys.readouterr()
    assert "evaluation skipped (--no-eval)" in captured.out and "HELD-OUT" not in captured.out
    assert "upskill run logs: none" in captured.err and not (tmp_path / "logs").exists()
    (gen,) = Store().list_runs()
    assert Store().get_run(gen["id"]).config["no_eval"] is True
    assert main(["runs", "show", gen["id"]]) == 0  # a run with no split and no eval runs still shows
    assert f"skills/{NAME}" in "".join(capsys.readouterr().out.split())  # rich wraps the path


def test_no_eval_result_says_it_was_not_evaluated() -> None:
    store = Store()
    with FakeOpenAIServer(ScriptedTeacher()) as ts:
        run_id = start_generate(_opts(ts.base_url, "http://127.0.0.1:9/v1", no_eval=True), store)
        result = run_generate(run_id, store)
    assert not result.evaluated and result.verdicts == [] and result.cases_path is None
    assert result.holdout_run_id is None and linked_runs(store, run_id) == {}
    assert any("evaluation skipped (--no-eval)" in n for n in result.notes)
    with pytest.raises(UserError, match="--no-eval with --from"):
        start_generate(_opts("http://x/v1", "http://x/v1", no_eval=True,
                             from_path=REPO / "tests/fixtures/skills/valid-skill"), store)


def test_examples_reach_the_teacher_and_resume_keeps_them(tmp_path: Path) -> None:
    teacher = ScriptedTeacher()
    argv = [a for e in EXAMPLES for a in ("-e", e)]
    # The first teacher request fails (400, not retried): the run stops before any step is done.
    with FakeOpenAIServer(teacher, fail_first=1, fail_status=400) as ts, FakeOpenAIServer(echo_student) as ss:
        assert _cli(ts, ss, *argv, "--iterations", "1") == 3
        (gen,) = Store().list_runs()
        assert Store().get_run(gen["id"]).config["examples"] == EXAMPLES
        assert main(["generate", "--resume", gen["id"]]) == 0  # no -e typed again
    answered = ts.requests[1:]  # after the resume
    kinds = [kind_of(_user(b)) for b in answered]
    assert kinds == ["cases", "skill", "refine"]
    for body in answered:
        assert all(f"- {e}" in _user(body) for e in EXAMPLES), kind_of(_user(body))


def test_without_examples_the_requests_have_no_examples_block() -> None:
    with FakeOpenAIServer(ScriptedTeacher()) as ts, FakeOpenAIServer(echo_student) as ss:
        run_generate(start_generate(_opts(ts.base_url, ss.base_url, iterations=0), store := Store()), store)
    assert not any("Examples of the task" in _user(b) for b in ts.requests)


def test_test_gen_model_writes_the_cases_and_the_teacher_the_skill() -> None:
    teacher = ScriptedTeacher()
    store = Store()
    with FakeOpenAIServer(teacher) as ts, FakeOpenAIServer(echo_student) as ss:
        run_id = start_generate(_opts(ts.base_url, ss.base_url, iterations=0, test_gen_model="case-writer",
                                      examples=EXAMPLES), store)
        result = run_generate(run_id, store)
    by_kind = {kind_of(_user(b)): b["model"] for b in ts.requests}
    assert by_kind == {"cases": "case-writer", "skill": "fake-teacher"}
    cases_body = next(b for b in ts.requests if kind_of(_user(b)) == "cases")
    assert EXAMPLES[0] in _user(cases_body)
    assert [c["step"] for c in teacher_calls(store, run_id)] == ["cases", "draft-0"]
    assert result.verdicts and Path(result.cases_path).is_file()


def test_test_gen_model_is_not_used_with_given_cases(tmp_path: Path) -> None:
    from tests.fixtures.teacher.scripted import canned

    cases = tmp_path / "mine.json"
    cases.write_text(canned("cases.json"))
    store = Store()
    with FakeOpenAIServer(ScriptedTeacher()) as ts, FakeOpenAIServer(echo_student) as ss:
        run_id = start_generate(_opts(ts.base_url, ss.base_url, iterations=0, test_gen_model="case-writer",
                                      cases_path=cases), store)
        run_generate(run_id, store)
    assert {b["model"] for b in ts.requests} == {"fake-teacher"}


def test_runs_dir_writes_the_logs_of_every_student_phase(tmp_path: Path, capsys) -> None:
    logs = tmp_path / "logs"
    with FakeOpenAIServer(ScriptedTeacher()) as ts, FakeOpenAIServer(echo_student) as ss:
        assert _cli(ts, ss, "--iterations", "1", "--runs-dir", str(logs)) == 0
    (gen,) = [r for r in Store().list_runs() if r["kind"] == "generate"]
    phases = linked_runs(Store(), gen["id"])
    assert list(phases) == ["train-0", "train-1", "holdout"]
    batches = {b.name: b for b in logs.iterdir()}
    assert len(batches) == 3
    err = capsys.readouterr().err
    for phase, run_id in phases.items():
        (batch,) = [b for name, b in batches.items() if name.endswith(run_id)]
        assert f"upskill run logs: {batch}" in err
        runs = read_batch(batch)
        arms = ["with_skill"] if phase == "train-1" else ["baseline", "with_skill"]  # train-1: with-skill only
        assert [r["run_type"] for r in runs] == arms
        n_cases = len(Store().get_run(run_id).cases)
        assert all(r["assertions_total"] >= n_cases for r in runs)
