"""The two arms of agent mode differ only by the skill: the same tools, the same system prompt
and task, plus the skill lines and skill/ in the with-skill arm (issue 17, item 3)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.agent.workspace import skill_files_from_folder
from harness.inputs.cases import parse_cases
from harness.inputs.skills import load_skill
from harness.prompts.agent import AGENT_SYSTEM_PROMPT, build_agent_prompt, skill_lines
from harness.prompts.answer_format import ANSWER_FORMAT
from harness.prompts.build import SKILL_FOOTER, SKILL_HEADER, build_prompt
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.agent.scripts import SKILL, turns_in
from tests.fakes.agent_server import Call, FakeAgentServer, Reply

(CASE,) = parse_cases([{"input": "Write RMSNorm", "expected": {"contains": "9.0"},
                        "kernel": {"op": "rmsnorm", "api": "rms_norm(x, w, eps)", "checks": ["build_toml"]}}])
RECORD = {"name": "demo", "description": "Use when writing kernels.", "block": "SKILL BLOCK"}


def test_on_demand_adds_only_the_skill_lines_to_the_system_prompt() -> None:
    base = build_agent_prompt(CASE, None)
    with_skill = build_agent_prompt(CASE, RECORD, delivery="on-demand")
    assert base.system == AGENT_SYSTEM_PROMPT and base.user == with_skill.user
    assert with_skill.system == base.system + skill_lines("demo", "Use when writing kernels.")
    assert "<location>skill/SKILL.md</location>" in with_skill.system and "SKILL BLOCK" not in with_skill.system
    # The agent's task asks for write_file, not fenced blocks; the project's contents are the same words.
    assert "write_file" in base.user and "path=` and the file's path" not in base.user


def test_inline_puts_the_block_in_front_of_the_task_as_one_shot_does() -> None:
    base = build_agent_prompt(CASE, None)
    inline = build_agent_prompt(CASE, RECORD, delivery="inline")
    assert inline.system == base.system
    assert inline.user == f"{SKILL_HEADER}SKILL BLOCK{SKILL_FOOTER}{base.user}"


def test_one_shot_prompts_are_unchanged_by_agent_mode() -> None:
    # The answer format one-shot runs have always sent (its sha256 before agent mode existed).
    assert hashlib.sha256(ANSWER_FORMAT.encode()).hexdigest() == \
        "9422a030adab53ea16cb8de1a76e28b23ff2735b98998123fbc8bf721c71a285"
    assert ANSWER_FORMAT in build_prompt(CASE, None).user


def _script(body: dict) -> Reply:
    turn = turns_in(body)
    if turn == 0:
        return Reply(calls=[Call("write_file", {"path": "a.txt", "content": "x"}), Call("list_files", {})])
    return Reply(calls=[Call("submit", {})])


@pytest.mark.parametrize("delivery", ["on-demand", "inline"])
def test_the_arms_differ_only_by_the_skill_in_what_the_model_sees(tmp_path: Path, delivery: str) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"id": "c", "input": "Say 9.0", "expected": {"contains": "9.0"}}]}))
    store = Store()
    with FakeAgentServer(script=_script) as server:
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["m"], base_url=server.base_url,
                                        level="text", agent=True, skill_delivery=delivery, concurrency=1), store)
        execute(run_id, store)
    first = {}
    listing = {}
    for body in server.requests:
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        arm = "with_skill" if system != AGENT_SYSTEM_PROMPT or user.startswith(SKILL_HEADER) else "baseline"
        if turns_in(body) == 0:
            first[arm] = body
        else:
            listing[arm] = body["messages"][-1]["content"]
    base, with_skill = first["baseline"], first["with_skill"]
    # Same tools, same settings.
    assert {k: v for k, v in base.items() if k != "messages"} == {k: v for k, v in with_skill.items() if k != "messages"}
    skill = load_skill(SKILL)
    (b_sys, b_user), (w_sys, w_user) = [[m["content"] for m in b["messages"]] for b in (base, with_skill)]
    files, _ = skill_files_from_folder(SKILL)
    if delivery == "on-demand":
        assert w_sys == b_sys + skill_lines(skill.name, skill.description) and w_user == b_user
        # The workspace: the baseline's listing plus skill/, nothing else.
        extra = listing["with_skill"].removeprefix(listing["baseline"] + "\n").splitlines()
        assert listing["with_skill"].startswith(listing["baseline"] + "\n")
        assert [line.split("  ")[0] for line in extra] == [f"skill/{p}" for p in sorted(files)]
    else:
        assert w_sys == b_sys and w_user == f"{SKILL_HEADER}{skill.prompt_block()}{SKILL_FOOTER}{b_user}"
        assert listing["with_skill"] == listing["baseline"]  # inline: no skill/ folder
    assert listing["baseline"] == "a.txt  (1 bytes)"


def test_the_prefix_is_the_same_for_every_case_of_an_arm() -> None:
    """Issue 20: the shared prefix (system prompt, then the skill) is byte-identical across cases,
    so prefix caches serve it; agent mode keeps that."""
    (other,) = parse_cases([{"input": "Which capability for H100?", "expected": {"contains": "9.0"}}])
    for skill, delivery in ((None, "on-demand"), (RECORD, "on-demand"), (RECORD, "inline")):
        a = build_agent_prompt(CASE, skill, delivery=delivery)
        b = build_agent_prompt(other, skill, delivery=delivery)
        assert a.system == b.system and a.user != b.user
        if skill is not None and delivery == "inline":
            head = f"{SKILL_HEADER}SKILL BLOCK{SKILL_FOOTER}"
            assert a.user.startswith(head) and b.user.startswith(head)
