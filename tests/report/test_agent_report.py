"""The agent report: turns, tool calls by name, tokens and cost per trial, pass@turn from stored
check results, SKILL.md and reference reads; trajectories turn by turn, collapsed by default;
one-shot and agent runs never compared. Runs are made by the scripted agent fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.agent.conversation import AssistantStep, EndStep, ToolResultStep, Usage, UserStep
from harness.agent.tools import check_call
from harness.agent.trajectory import trajectory_stats
from harness.agent.workspace import project_digest
from harness.report.from_store import report_run
from harness.report.summary import summarize
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.agent.scripts import REPO, SKILL, FixAgent, broken_build_toml, turns_in
from tests.fakes.agent_server import Call, FakeAgentServer, Reply
from tests.fakes.openai_server import FakeOpenAIServer

CASE = {"id": "rms", "input": "Write an RMSNorm kernel.", "expected": {"contains": "9.0"},
        "kernel": {"op": "rmsnorm", "api": "rms_norm(input, weight, eps)", "checks": ["build_toml"]}}


def _turn(*calls, text: str = "") -> AssistantStep:
    return AssistantStep(text=text, tool_calls=list(calls), usage=Usage(input_tokens=100, output_tokens=5))


def _ok(call_id: str, name: str, content: str = "ok", detail: dict | None = None) -> ToolResultStep:
    return ToolResultStep(call_id=call_id, name=name, content=content, detail=detail)


def test_pass_at_turn_reads_the_checks_stored_for_the_same_content() -> None:
    good = {"build.toml": b"good"}
    steps = [UserStep(text="task"),
             _turn(check_call("1", "read_file", {"path": "skill/SKILL.md"}),
                   check_call("2", "read_file", {"path": "skill/references/a.md"})),
             _ok("1", "read_file"), _ok("2", "read_file"),
             _turn(check_call("3", "write_file", {"path": "build.toml", "content": "bad"})),
             _ok("3", "write_file"),
             _turn(check_call("4", "run_checks", {})),
             _ok("4", "run_checks", "FAIL", {"full_level": True, "digest": project_digest({"build.toml": b"bad"}),
                                             "verdict": "fail", "shown_verdict": "fail"}),
             _turn(check_call("5", "write_file", {"path": "./build.toml", "content": "good"})),  # passes from here
             _ok("5", "write_file"),
             _turn(check_call("6", "run_checks", {"level": "text"})),
             _ok("6", "run_checks", "PASS", {"full_level": True, "digest": project_digest(good), "verdict": "pass",
                                             "shown_verdict": "pass"}),
             _turn(check_call("7", "bash", {})),
             ToolResultStep(call_id="7", name="bash", content="tool error: unknown tool", is_error=True),
             _turn(text="done"), EndStep(outcome="final_message")]
    stats = trajectory_stats(steps, final_verdict="pass")
    assert stats.turns == 7 and stats.outcome == "final_message" and stats.pass_turn == 4
    assert [stats.passed_by(t) for t in (3, 4, 7)] == [False, True, True]
    assert stats.tool_calls == {"bash": 1, "read_file": 2, "run_checks": 2, "write_file": 2} and stats.tool_errors == 1
    assert stats.skill_md_read and stats.references_read == ["references/a.md"]
    assert [c.verdict for t in stats.trajectory for c in t.calls if c.name == "run_checks"] == ["fail", "pass"]
    # Without a passing check, only the final grade counts, from the last turn on.
    unchecked = [s for s in steps if not (isinstance(s, ToolResultStep) and s.call_id == "6")]
    assert trajectory_stats(unchecked, final_verdict="pass").pass_turn == 7
    assert trajectory_stats(unchecked, final_verdict="fail").pass_turn is None


def _agent_run(tmp_path: Path, runs: int = 2) -> str:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [CASE]}))
    store = Store()
    with FakeAgentServer(script=FixAgent({"build.toml": broken_build_toml()}, expect_error="sm_90")) as server:
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["fake-agent"], runs=runs,
                                        base_url=server.base_url, level="text", agent=True), store)
        execute(run_id, store)
    return run_id


def test_agent_summary_per_model_and_arm(tmp_path: Path) -> None:
    run = report_run(Store(), _agent_run(tmp_path))
    assert run.mode == "agent" and run.skill_delivery == "on-demand"
    assert not any("single-turn" in n for n in run.notes) and any("agent evaluation" in n for n in run.notes)
    summary = summarize(run)
    base, with_skill = summary.agent
    for a in (base, with_skill):
        assert a.trials == 2 and a.avg_turns == 6 and a.outcomes == {"submitted": 2} and a.ran_out == 0
        assert a.tool_calls == {"read_file": 2, "run_checks": 4, "submit": 2, "write_file": 14}
        assert a.tokens_per_trial and a.tokens_per_trial > 0
        # Broken at turn 2, fixed at turn 4 (checked at 5): known to pass from turn 4.
        assert a.pass_at_turn[:5] == [0.0, 0.0, 0.0, 1.0, 1.0] and len(a.pass_at_turn) == 12
    assert base.skill_md_read is None and base.tool_errors == 2  # no skill/ in the baseline
    assert with_skill.skill_md_read == 2 and with_skill.skill_md_share == 1.0 and with_skill.references_read == {}
    # Pass rate and lift are today's, over the same trials.
    assert summary.arm("fake-agent", "with_skill").pass_rate.rate == 1.0 and summary.lifts[0].pairs == 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, env=os.environ | {"COLUMNS": "200"})


def test_runs_show_collapses_trajectories_unless_asked(tmp_path: Path) -> None:
    run_id = _agent_run(tmp_path, runs=1)
    out = _cli("runs", "show", run_id)
    assert out.returncode == 0, out.stderr
    assert "Agent trials per model and arm" in out.stdout and "pass@turn" in out.stdout
    assert "single-turn" not in out.stdout and "turn 3" not in out.stdout
    assert f"runs show {run_id} --trajectories" in out.stdout
    for flag in ("--trajectories", "-v"):
        shown = _cli("runs", "show", run_id, flag)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("trajectory rms #0") == 2
        assert "turn 3" in shown.stdout and "checks at level text: FAIL" in shown.stdout
        assert "'sm_90' is not a capability" in shown.stdout and "-> ERROR tool error: skill/SKILL.md" in shown.stdout
    html = tmp_path / "r.html"
    assert _cli("runs", "show", run_id, "--html", str(html)).returncode == 0
    page = html.read_text()
    assert page.count('<details class="trajectory">') == 2 and page.count('<details class="turn">') == 12
    assert "<details open" not in page and 'id="pass-at-turn"' in page and "Final message" in page
    assert "Workspace files, as graded" in page and "rmsnorm_cuda/rmsnorm.cu" in page
    doc = json.loads(_cli("runs", "show", run_id, "--json").stdout)
    assert doc["run"]["mode"] == "agent" and doc["summary"]["agent"][1]["skill_md_read"] == 1
    assert doc["run"]["trials"][0]["agent"]["trajectory"][2]["calls"][0]["name"] == "run_checks"


def test_runs_compare_refuses_one_shot_against_agent(tmp_path: Path) -> None:
    agent_id = _agent_run(tmp_path, runs=1)
    cases = tmp_path / "cases.json"
    store = Store()
    with FakeOpenAIServer() as server:
        one_shot = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["fake-agent"],
                                          base_url=server.base_url, level="text"), store)
        execute(one_shot, store)
    out = _cli("runs", "compare", one_shot, agent_id)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"run {one_shot} is one-shot and run {agent_id} is agent" in lines[0]
    # Two agent runs compare as runs do.
    other = _agent_run(tmp_path, runs=1)
    assert _cli("runs", "compare", agent_id, other).returncode == 0


@pytest.mark.parametrize("delivery", ["inline"])
def test_inline_runs_report_no_skill_reads(tmp_path: Path, delivery: str) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"id": "q", "input": "Say 9.0", "expected": {"contains": "9.0"}}]}))

    def script(body: dict) -> Reply:
        return Reply(calls=[Call("read_file", {"path": "skill/SKILL.md"})]) if turns_in(body) == 0 else Reply(text="9.0")

    store = Store()
    with FakeAgentServer(script=script) as server:
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["m"], base_url=server.base_url,
                                        level="text", agent=True, skill_delivery=delivery), store)
        execute(run_id, store)
    base, with_skill = summarize(report_run(store, run_id)).agent
    assert with_skill.skill_md_read is None and with_skill.tool_errors == 1  # no skill/ folder inline
    assert with_skill.pass_at_turn == [0.0] + [1.0] * 11
