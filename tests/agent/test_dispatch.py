from __future__ import annotations

from pathlib import Path

from harness.agent.conversation import AssistantStep, Conversation, UserStep
from harness.agent.dispatch import SUBMITTED, execute_call, replay_writes
from harness.agent.feedback import cap_level, format_checks
from harness.agent.tools import check_call, parse_openai_call
from harness.agent.workspace import Workspace
from harness.common.results import CheckResult, Finding


def no_checks(level):
    raise AssertionError("run_checks not expected")


def test_each_tool(ws_skill: Workspace):
    r, ends = execute_call(check_call("1", "write_file", {"path": "a.cu", "content": "x"}), ws_skill, no_checks)
    assert (r.content, r.is_error, ends, r.detail) == ("wrote a.cu (1 bytes)", False, False, {"path": "a.cu", "bytes": 1})
    assert execute_call(check_call("2", "read_file", {"path": "a.cu"}), ws_skill, no_checks)[0].content == "x"
    assert "skill/SKILL.md" in execute_call(check_call("3", "list_files", {}), ws_skill, no_checks)[0].content
    r, ends = execute_call(check_call("4", "submit", {}), ws_skill, no_checks)
    assert (r.content, ends) == (SUBMITTED, True)


def test_bad_input_becomes_error_results(ws_base: Workspace):
    cases = [
        parse_openai_call({"id": "1", "function": {"name": "write_file", "arguments": "{bad"}}),
        check_call("2", "shell", {"cmd": "ls"}),
        check_call("3", "write_file", {"path": "/etc/x", "content": "x"}),
        check_call("4", "write_file", {"path": "skill/SKILL.md", "content": "x"}),
        check_call("5", "read_file", {"path": "skill/SKILL.md"}),
        check_call("6", "read_file", {"path": "../../etc/passwd"}),
    ]
    for call in cases:
        result, ends = execute_call(call, ws_base, no_checks)
        assert result.is_error and result.content.startswith("tool error: ") and not ends, call
        assert result.call_id == call.id
    assert ws_base.project_files() == []


def test_run_checks_gets_the_level_and_keeps_the_detail(ws_base: Workspace):
    asked = []

    def checks(level):
        asked.append(level)
        return "checks: PASS", {"verdict": "pass", "level": cap_level(level, "compile")}

    r, _ = execute_call(check_call("1", "run_checks", {"level": "run"}), ws_base, checks)
    assert asked == ["run"] and r.detail == {"verdict": "pass", "level": "compile"} and r.content == "checks: PASS"


def test_cap_level():
    assert cap_level(None, "compile") == "compile"
    assert cap_level("run", "compile") == "compile"
    assert cap_level("text", "run") == "text"


def test_format_checks_is_compact_and_names_file_lines():
    errors = [Finding(severity="error", key=f"k.cu:{i}", reason="expected ';'") for i in range(9)]
    results = [CheckResult(name="build_toml", status="pass", reason="ok"),
               CheckResult.from_findings("compile", errors + [Finding(severity="note", key="n", reason="note")]),
               CheckResult(name="run", status="fail", reason="mismatch", metrics={"max_abs_err": 0.0123}),
               CheckResult(name="speedup", status="pass", reason="ok", metrics={"speedup": 1.5})]
    text = format_checks(results, verdict="fail", level="run", device="cpu")
    lines = text.splitlines()
    assert lines[0] == "checks at level run on cpu: FAIL"
    # The first error is the reason line; it is not said twice.
    assert "- compile: fail: k.cu:0: expected ';' (+8 more)" in lines and "    k.cu:0: expected ';'" not in lines
    assert "    k.cu:1: expected ';'" in lines and "    (+2 more errors)" in lines
    assert "note" not in text and "max abs error 0.0123" in text and "speedup 1.50x" in text


def test_replay_rebuilds_the_workspace(tmp_path: Path, ws_base: Workspace):
    conv = Conversation(system="s", steps=[UserStep(text="t")])
    calls = [check_call("1", "write_file", {"path": "a", "content": "one"}),
             check_call("2", "write_file", {"path": "/abs", "content": "no"}),
             check_call("3", "write_file", {"path": "a", "content": "two"}),
             check_call("4", "write_file", {"path": "b/c", "content": "three"})]
    conv.steps.append(AssistantStep(tool_calls=calls))
    for call in calls[:3]:  # killed before call 4's result was stored
        conv.steps.append(execute_call(call, ws_base, no_checks)[0])
    fresh = Workspace.create(tmp_path / "again", None)
    assert replay_writes(conv, fresh) == 2
    assert fresh.read_file("a") == "two" and [p for p, _, _ in fresh.project_files()] == ["a"]
    assert [c.id for c in conv.unanswered_calls()] == ["4"]
