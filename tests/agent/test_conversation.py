from __future__ import annotations

import importlib.util
import json

import pytest

from harness.agent.conversation import (AssistantStep, Conversation, ToolResultStep, Usage, UserStep,
                                        step_from_json, step_to_json)
from harness.agent.tools import parse_openai_call
from tests.fakes.agent_server import history_problem


def _call(id, name, args):
    return parse_openai_call({"id": id, "type": "function", "function": {"name": name, "arguments": args}})


def sample() -> Conversation:
    return Conversation(system="SYS", steps=[
        UserStep(text="TASK"),
        AssistantStep(text="reading", tool_calls=[_call("c1", "read_file", '{"path": "skill/SKILL.md"}'),
                                                  _call("c2", "list_files", "{}")],
                      usage=Usage(input_tokens=10, output_tokens=3, cached_tokens=2), model="m"),
        ToolResultStep(call_id="c1", name="read_file", content="SKILL TEXT"),
        ToolResultStep(call_id="c2", name="list_files", content="."),
        AssistantStep(tool_calls=[_call("c3", "write_file", '{"path": "a.cu", "content": "x')],
                      usage=Usage(input_tokens=20, output_tokens=5)),
        ToolResultStep(call_id="c3", name="write_file", content="tool error: malformed", is_error=True),
        UserStep(text="3 turns left"),
        AssistantStep(text="final answer 9.0", usage=Usage(input_tokens=30, output_tokens=4)),
    ])


def test_steps_round_trip_through_json():
    conv = sample()
    rows = [step_to_json(s) for s in conv.steps]
    assert all(isinstance(json.loads(r), dict) for r in rows)
    assert [step_from_json(r) for r in rows] == conv.steps
    assert Conversation.model_validate_json(conv.model_dump_json()) == conv


def test_reading_the_trajectory():
    conv = sample()
    assert conv.turns() == 3
    assert conv.usage() == Usage(input_tokens=60, output_tokens=12, cached_tokens=2)
    assert conv.final_text() == "final answer 9.0"
    assert conv.unanswered_calls() == []
    partial = Conversation(system="S", steps=conv.steps[:3])  # killed after c1's result was stored
    assert [c.id for c in partial.unanswered_calls()] == ["c2"]


def test_openai_rendering_follows_the_api_rules():
    msgs = sample().to_openai()
    assert msgs[0] == {"role": "system", "content": "SYS"}
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool", "assistant", "tool",
                                         "user", "assistant"]
    assert msgs[5]["content"] is None  # tool calls only
    assert msgs[5]["tool_calls"][0]["function"]["arguments"] == '{"path": "a.cu", "content": "x'  # verbatim
    assert msgs[6] == {"role": "tool", "tool_call_id": "c3", "content": "tool error: malformed"}
    assert history_problem(msgs) is None


def test_openai_rendering_for_llama_cpp_puts_results_in_user_messages():
    msgs = sample().to_openai(tool_results_as_user=True)
    assert "tool" not in [m["role"] for m in msgs]
    assert all(isinstance(m.get("content"), str) for m in msgs)
    assert msgs[3]["role"] == "user"
    # Both results of the turn, in call order, without the (random, never shown) call ids.
    assert msgs[3]["content"] == "[result of read_file]\nSKILL TEXT\n\n[result of list_files]\n."


def test_anthropic_rendering():
    system, msgs = sample().to_anthropic()
    assert system == "SYS"
    roles = [m["role"] for m in msgs]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]  # strictly alternating
    assert msgs[1]["content"][1] == {"type": "tool_use", "id": "c1", "name": "read_file",
                                     "input": {"path": "skill/SKILL.md"}}
    assert [b["type"] for b in msgs[2]["content"]] == ["tool_result", "tool_result"]
    assert msgs[3]["content"] == [{"type": "tool_use", "id": "c3", "name": "write_file", "input": {}}]
    assert [b["type"] for b in msgs[4]["content"]] == ["tool_result", "text"]  # results first
    assert msgs[4]["content"][0]["is_error"] is True


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_chatml_function_calling_sees_the_results_only_as_user_messages():
    """The real template of the embedded server: role=tool content is dropped, so the
    compat rendering is what makes the model see its tool results."""
    from llama_cpp import llama_chat_format

    from harness.agent.tools import openai_tools

    class Capture:
        verbose = False
        prompt = ""

        def create_completion(self, prompt, **kw):
            Capture.prompt = prompt
            raise StopIteration

    def prompt_for(messages):
        with pytest.raises(StopIteration):
            llama_chat_format.chatml_function_calling(Capture(), messages, tools=openai_tools(), tool_choice="auto")
        return Capture.prompt

    assert "SKILL TEXT" not in prompt_for(sample().to_openai())
    assert "SKILL TEXT" in prompt_for(sample().to_openai(tool_results_as_user=True))
