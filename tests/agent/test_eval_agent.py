"""`eval --agent` end to end against the scripted OpenAI-protocol agent server (real SDK over
HTTP, real SQLite, the real grader): both arms, bad inputs, limits, text cases, modes kept
apart, resume after kill -9. Compile and run levels are in test_eval_agent_checks.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.agent.conversation import step_from_json
from harness.common.errors import UserError
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, rescore, start_eval
from tests.agent.scripts import REPO, SKILL, FixAgent, broken_build_toml, turns_in
from tests.fakes.agent_server import Call, FakeAgentServer, Reply

KERNEL_CASE = {"id": "rms", "input": "Write an RMSNorm kernel.", "expected": {"contains": "9.0"},
               "kernel": {"op": "rmsnorm", "api": "rms_norm(input, weight, eps)", "checks": ["build_toml"]}}


def cases_file(tmp_path: Path, *cases: dict) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": list(cases) or [KERNEL_CASE]}))
    return path


def opts(cases: Path, url: str, **kw) -> EvalOptions:
    return EvalOptions(skill_dir=SKILL, cases_path=cases, models=["fake-agent"], base_url=url,
                       **({"level": "text", "agent": True} | kw))


def steps_of(store: Store, trial_id: int) -> list:
    return [step_from_json(r.body) for r in store.agent_steps(trial_id)]


def results_of(store: Store, trial_id: int) -> list:
    return [s for s in steps_of(store, trial_id) if s.role == "tool"]


def test_scripted_agent_fixes_its_project_and_passes_in_both_arms(tmp_path: Path) -> None:
    agent = FixAgent({"build.toml": broken_build_toml()}, expect_error="'sm_90' is not a capability")
    store = Store()
    with FakeAgentServer(script=agent) as server:
        run_id = start_eval(opts(cases_file(tmp_path), server.base_url), store)
        assert execute(run_id, store) == "finished"
    assert len(server.probes) == 1  # the tool-support check, once, before any trial
    assert len(server.requests) == 2 * 6 and len(agent.seen_errors) == 2
    run = store.get_run(run_id)
    assert run.config["mode"] == "agent" and run.config["skill_delivery"] == "on-demand"
    assert "SKILL.md" in run.skill["files"]
    for trial in store.trials(run_id):
        assert trial.status == "answered" and trial.grade.score.verdict == "pass", trial.arm
        assert trial.completion.stop_reason == "submitted" and trial.calls == 6
        assert trial.completion.text == "Fixing the error."  # the last text the agent wrote
        results = results_of(store, trial.id)
        checks = [r for r in results if r.name == "run_checks"]
        assert [c.detail["shown_verdict"] for c in checks] == ["fail", "pass"]
        assert [c.detail["verdict"] for c in checks] == ["fail", "pass"]  # markers (hidden) agree
        assert "markers" not in checks[0].content and "9.0" not in checks[1].content.split("\n")[0]
        read = results[0]
        if trial.arm == "with_skill":
            assert not read.is_error and read.content.startswith("---\nname: valid-skill")
        else:
            assert read.is_error and read.content == "tool error: skill/SKILL.md: no such file or folder"
        assert steps_of(store, trial.id)[-1].role == "end"


def test_bad_inputs_come_back_as_tool_errors_and_the_trial_goes_on(tmp_path: Path) -> None:
    bad = [Call("write_file", '{"path": "build.toml", "content": "unterminated'),
           Call("bash", {"cmd": "nvcc x.cu"}),
           Call("write_file", {"path": "../escape.txt", "content": "x"}),
           Call("read_file", {"path": "/etc/passwd"}),
           Call("write_file", {"path": "skill/SKILL.md", "content": "x"}),
           Call("read_file", {"path": "skill/SKILL.md"}),
           Call("write_file", {"path": "a.txt"}),  # a required argument missing
           Call("list_files", {"path": ".", "recursive": True})]  # an argument that does not exist

    def script(body: dict) -> Reply:
        turn = turns_in(body)
        if turn < len(bad):
            return Reply(calls=[bad[turn]])
        return Reply(text="The capability is 9.0.")

    store = Store()
    with FakeAgentServer(script=script) as server:
        run_id = start_eval(opts(cases_file(tmp_path), server.base_url, runs=1), store)
        assert execute(run_id, store) == "finished"
    for trial in store.trials(run_id):
        results = results_of(store, trial.id)
        assert len(results) == len(bad) and trial.completion.stop_reason == "final_message"
        wanted = ["malformed JSON", "unknown tool 'bash'", "'..'", "absolute", "skill/ is read-only",
                  "no such file or folder" if trial.arm == "baseline" else None, "content: field required",
                  "recursive: extra inputs are not permitted"]
        for result, needle in zip(results, wanted):
            if needle is None:  # the with-skill arm may read its skill
                assert not result.is_error
                continue
            assert result.is_error and result.content.startswith("tool error: ") and needle in result.content, \
                (needle, result.content)
        # The trial went on to its end and was graded (the workspace is empty: build_toml fails).
        assert trial.grade.score.verdict == "fail"
    # Each error reached the model in the next request.
    errors = [m["content"] for body in server.requests for m in body["messages"][-1:] if m["role"] == "tool"]
    assert any("unknown tool 'bash'" in e for e in errors)


def test_turn_and_token_limits_end_the_trial_graded_as_it_stands(tmp_path: Path) -> None:
    def script(body: dict) -> Reply:
        return Reply(calls=[Call("list_files", {})])

    case = KERNEL_CASE | {"id": "short", "max_turns": 2}
    store = Store()
    with FakeAgentServer(script=script, prompt_tokens=100, completion_tokens=10) as server:
        run_id = start_eval(opts(cases_file(tmp_path, KERNEL_CASE, case), server.base_url, max_turns=4), store)
        execute(run_id, store)
        by_case = {(t.case_id, t.arm): t for t in store.trials(run_id)}
        assert by_case[("rms", "baseline")].calls == 4 and by_case[("short", "baseline")].calls == 2
        assert {t.completion.stop_reason for t in by_case.values()} == {"ran_out_turns"}
        assert {t.grade.score.verdict for t in by_case.values()} == {"fail"}
        run_id = start_eval(opts(cases_file(tmp_path), server.base_url, max_trial_tokens=250), store)
        execute(run_id, store)
    for t in store.trials(run_id):
        assert t.completion.stop_reason == "ran_out_tokens" and t.calls == 3  # 110 + 110 < 250 <= 330
        asked = [json.loads(s.body)["usage"] for s in store.agent_steps(t.id) if s.role == "assistant"]
        assert len(asked) == 3
    # The per-call output limit is lowered to what the budget has left.
    assert sorted(b["max_tokens"] for b in server.requests[-6:]) == [30, 30, 140, 140, 250, 250]


def test_text_cases_grade_the_final_message_or_the_output_file(tmp_path: Path) -> None:
    def script(body: dict) -> Reply:
        if turns_in(body) == 0:
            return Reply(calls=[Call("write_file", {"path": "answer.md", "content": "use 9.0"})])
        if turns_in(body) == 1:
            return Reply(calls=[Call("run_checks", {})])
        return Reply(text="Done: see the file. sm_90")

    cases = cases_file(tmp_path, {"id": "msg", "input": "Which capability?", "expected": {"contains": "sm_90"}},
                       {"id": "file", "input": "Write answer.md", "expected": {"contains": "9.0", "not_contains": "sm_90"},
                        "output_file": "answer.md"})
    store = Store()
    with FakeAgentServer(script=script) as server:
        run_id = start_eval(opts(cases, server.base_url), store)
        execute(run_id, store)
    for t in store.trials(run_id):
        assert t.grade.score.verdict == "pass", (t.case_id, t.grade.score)
        check = next(r for r in results_of(store, t.id) if r.name == "run_checks")
        assert check.content.startswith("nothing to check in the workspace")
        assert ("the file answer.md" in check.content) == (t.case_id == "file")
    # One-shot mode cannot grade a workspace file: refused before anything is stored.
    with pytest.raises(UserError, match="output_file .*--agent"):
        start_eval(opts(cases, "http://127.0.0.1:9/v1", agent=False), store)


def test_rescore_rebuilds_the_workspace_from_the_stored_writes(tmp_path: Path) -> None:
    agent = FixAgent({"build.toml": broken_build_toml()}, expect_error="sm_90")
    store = Store()
    with FakeAgentServer(script=agent) as server:
        run_id = start_eval(opts(cases_file(tmp_path), server.base_url, runs=1), store)
        execute(run_id, store)
        sent = len(server.requests)
        assert rescore(run_id, store, level="text", device="cuda") == 2
        assert len(server.requests) == sent  # no model call
    for t in store.trials(run_id):
        assert t.grade.score.verdict == "pass"
        assert store.execute("SELECT COUNT(*) FROM grades WHERE trial_id=?", (t.id,)).fetchone()[0] == 2


def test_export_and_import_carry_the_trajectories(tmp_path: Path) -> None:
    from harness.workflows.transfer import export_run, import_runs

    agent = FixAgent({"build.toml": broken_build_toml()}, expect_error="sm_90")
    store = Store()
    with FakeAgentServer(script=agent) as server:
        run_id = start_eval(opts(cases_file(tmp_path), server.base_url), store)
        execute(run_id, store)
    before = {(t.arm, r.seq, r.body) for t in store.trials(run_id) for r in store.agent_steps(t.id)}
    export_run(run_id, tmp_path / "run.tar")
    store.close()
    os.environ["KERNELGRADE_HOME"] = str(tmp_path / "elsewhere")  # restored by the autouse fixture
    (imported,) = import_runs(tmp_path / "run.tar")
    there = Store()
    after = {(t.arm, r.seq, r.body) for t in there.trials(imported) for r in there.agent_steps(t.id)}
    assert after == before and len(after) == 2 * 19


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, **kw)


def test_a_server_without_tools_is_refused_before_any_call(tmp_path: Path) -> None:
    with FakeAgentServer(script=lambda body: Reply(text="never"), tools=False) as server:
        out = _cli("eval", str(SKILL), "--cases", str(cases_file(tmp_path)), "--model", "no-tools-model",
                   "--base-url", server.base_url, "--agent", "--level", "text")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no-tools-model" in lines[0] and "refused tool calling" in lines[0], out.stderr
    assert server.requests == [] and Store().list_runs() == []


def test_a_model_known_to_have_no_tools_is_refused_without_asking(tmp_path: Path) -> None:
    out = _cli("eval", str(SKILL), "--cases", str(cases_file(tmp_path)), "--model", "openai:o1-mini", "--agent",
               "--level", "text", env=os.environ | {"OPENAI_API_KEY": "sk-test"})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--model openai:o1-mini: o1-mini has no tool calling" in out.stderr
    out = _cli("eval", str(SKILL), "--cases", str(cases_file(tmp_path)), "--model", "m", "--base-url",
               "http://127.0.0.1:9/v1", "--skill-delivery", "on-demand", "--level", "text")
    assert out.returncode == 2 and "--skill-delivery on-demand: only with --agent" in out.stderr


def test_kill_9_mid_trajectory_then_resume_stores_every_step_once(tmp_path: Path) -> None:
    agent = FixAgent({"build.toml": broken_build_toml()}, expect_error="sm_90")
    with FakeAgentServer(script=agent, delay_s=0.15) as server:
        args = ["eval", str(SKILL), "--cases", str(cases_file(tmp_path)), "--model", "fake-agent", "--base-url",
                server.base_url, "--runs", "2", "--level", "text", "--agent", "--concurrency", "2", "--json"]
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", *args], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        store = Store()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = store.execute("SELECT COUNT(*) FROM agent_steps").fetchone()[0] if store.list_runs() else 0
            if n >= 20:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (run,) = store.list_runs()
        before = {(r["trial_id"], r["seq"]): r["body"] for r in store.execute("SELECT * FROM agent_steps")}
        assert 20 <= len(before) < 4 * 19, "the kill should land mid-trajectory"
        sent_before = len(server.requests)
        out = _cli("eval", "--resume", run["id"], "--json")
        assert out.returncode == 0, out.stderr
    trials = store.trials(run["id"])
    assert len(trials) == 4 and all(t.status == "answered" and t.grade.score.verdict == "pass" for t in trials)
    for t in trials:
        rows = store.agent_steps(t.id)
        # Every step exactly once, in order, and the whole script is there.
        assert [r.seq for r in rows] == list(range(19)), [r.seq for r in rows]
        assert [r.role for r in rows].count("assistant") == 6 == t.calls
        call_ids = [r.call_id for r in rows if r.role == "tool"]
        assert len(call_ids) == len(set(call_ids)) == 11
    # What was stored before the kill is unchanged.
    after = {(r["trial_id"], r["seq"]): r["body"] for r in store.execute("SELECT * FROM agent_steps")}
    assert all(after[k] == v for k, v in before.items())
    # No stored model turn was asked for again: after the resume the server got exactly the turns
    # that were missing. (Calls in flight at the kill, whose answers were never stored, are the
    # only ones made twice: at most one per worker.)
    stored_turns = sum(1 for body in before.values() if json.loads(body)["role"] == "assistant")
    assert len(server.requests) - sent_before == 4 * 6 - stored_turns
    assert 4 * 6 <= len(server.requests) <= 4 * 6 + 2


def test_max_cost_stops_a_trajectory_between_turns_and_counts_its_turns_on_resume(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    from harness.common import config as config_mod

    # 1 USD per token in and out: each scripted turn costs well over 1 USD.
    monkeypatch.setattr(config_mod, "DEFAULT_PRICES", {"fake-agent": config_mod.Price(input=1e6, output=1e6)})
    agent = FixAgent({"build.toml": broken_build_toml()}, expect_error="sm_90")
    store = Store()
    with FakeAgentServer(script=agent, prompt_tokens=100, completion_tokens=10) as server:
        run_id = start_eval(opts(cases_file(tmp_path), server.base_url, runs=1, concurrency=1, max_cost=250.0), store)
        assert execute(run_id, store) == "interrupted"
        sent = len(server.requests)
        assert sent == 3  # 110 + 110 < 250 <= 330 USD: stopped before the fourth call
        (first, second) = store.trials(run_id)
        assert first.status == "pending" and [r.role for r in store.agent_steps(first.id)][-1] == "tool"
        assert not store.agent_steps(second.id)
        # What the unfinished trajectory spent counts on resume: still over the budget, no call made.
        assert execute(run_id, store) == "interrupted" and len(server.requests) == sent


def test_one_shot_refuses_a_case_with_output_file_in_one_line(tmp_path: Path) -> None:
    cases = cases_file(tmp_path, {"id": "file", "input": "Write answer.md", "expected": {"contains": "9.0"},
                                  "output_file": "answer.md"})
    out = _cli("eval", str(SKILL), "--cases", str(cases), "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
               "--level", "text")
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr
    assert "case 'file': output_file (answer.md)" in lines[0] and "--agent" in lines[0]
    assert Store().list_runs() == []


def test_a_context_refusal_ends_the_trial_as_ran_out_and_grades_it(tmp_path: Path) -> None:
    full = ("This model's maximum context length is 8192 tokens. However, you requested 8449 tokens "
            "(8193 in the messages, 256 in the completion).")

    def script(body: dict) -> Reply:
        if turns_in(body) == 0:
            return Reply(calls=[Call("write_file", {"path": "answer.md", "content": "9.0"})])
        return Reply(error=full)

    cases = cases_file(tmp_path, {"id": "f", "input": "Write answer.md", "expected": {"contains": "9.0"},
                                  "output_file": "answer.md"})
    store = Store()
    with FakeAgentServer(script=script) as server:
        run_id = start_eval(opts(cases, server.base_url, attempts=1), store)
        assert execute(run_id, store) == "finished"
    for t in store.trials(run_id):
        assert t.status == "answered" and t.completion.stop_reason == "ran_out_context" and t.calls == 2
        end = steps_of(store, t.id)[-1]
        assert end.role == "end" and "maximum context length" in end.detail
        assert t.grade.score.verdict == "pass"  # graded as the workspace stood


def test_an_anthropic_model_runs_agent_mode_through_tool_use(tmp_path: Path, monkeypatch) -> None:
    from tests.fakes.anthropic_server import FakeAnthropicServer

    turn = [[{"type": "text", "text": "writing"}, {"type": "tool_use", "id": "toolu_a", "name": "write_file",
                                                   "input": {"path": "answer.md", "content": "9.0"}}],
            [{"type": "tool_use", "id": "toolu_b", "name": "run_checks", "input": {}}],
            [{"type": "tool_use", "id": "toolu_c", "name": "submit", "input": {}}]]
    cases = cases_file(tmp_path, {"id": "f", "input": "Write answer.md", "expected": {"contains": "9.0"},
                                  "output_file": "answer.md"})
    with FakeAnthropicServer(turn * 2) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        store = Store()
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["anthropic:claude-test"],
                                        level="text", agent=True, concurrency=1), store)
        assert execute(run_id, store) == "finished"
    for t in store.trials(run_id):
        assert t.grade.score.verdict == "pass" and t.completion.stop_reason == "submitted" and t.calls == 3
    # tool_use ids come back as tool_result blocks in the next user turn; the tools are Anthropic's form.
    second = server.requests[1]
    assert second["messages"][-1]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_a",
                                                    "content": "wrote answer.md (3 bytes)", "is_error": False}
    assert [t["name"] for t in second["tools"]] == ["read_file", "write_file", "list_files", "run_checks", "submit"]
    assert all(b.get("tool_choice") == {"type": "auto"} for b in server.requests)
