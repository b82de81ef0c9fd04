from __future__ import annotations

import json

import pytest

from harness.agent.tools import (SPECS, TOOL_SPECS, ReadFileArgs, RunChecksArgs, anthropic_tools, check_call,
                                 openai_tools, parse_anthropic_call, parse_openai_call)


def test_the_contract_is_exactly_five_tools():
    assert [s.name for s in TOOL_SPECS] == ["read_file", "write_file", "list_files", "run_checks", "submit"]


@pytest.mark.parametrize("spec", TOOL_SPECS, ids=lambda s: s.name)
def test_schema_and_argument_model_agree(spec):
    fields = spec.args_model.model_fields
    assert set(spec.parameters["properties"]) == set(fields)
    assert set(spec.parameters["required"]) == {n for n, f in fields.items() if f.is_required()}
    assert spec.parameters["type"] == "object" and spec.parameters["additionalProperties"] is False


def test_provider_renderings():
    a, o = anthropic_tools(), openai_tools()
    assert [t["name"] for t in a] == [t["function"]["name"] for t in o] == list(SPECS)
    assert all(set(t) == {"name", "description", "input_schema"} for t in a)
    assert all(t["type"] == "function" and set(t["function"]) == {"name", "description", "parameters"} for t in o)
    assert a[0]["input_schema"] == o[0]["function"]["parameters"]
    json.dumps(a), json.dumps(o)  # plain JSON, nothing pydantic left in


def _oa(name, arguments, id="c1"):
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_valid_openai_call_is_typed():
    call = parse_openai_call(_oa("read_file", '{"path": "skill/SKILL.md"}'))
    assert call.error is None and call.id == "c1" and call.arguments == {"path": "skill/SKILL.md"}
    assert call.raw_arguments == '{"path": "skill/SKILL.md"}'
    assert call.args() == ReadFileArgs(path="skill/SKILL.md")


def test_malformed_json_is_a_tool_error_and_keeps_the_raw_text():
    call = parse_openai_call(_oa("write_file", '{"path": "a.cu", "content": "x'))
    assert call.error and "malformed JSON" in call.error
    assert call.raw_arguments == '{"path": "a.cu", "content": "x' and call.arguments == {}
    with pytest.raises(ValueError):
        call.args()


def test_unknown_tool_is_a_tool_error_even_with_bad_json():
    assert "unknown tool 'bash'" in parse_openai_call(_oa("bash", '{"cmd": "ls"}')).error
    assert "unknown tool 'bash'" in parse_openai_call(_oa("bash", "{oops")).error


@pytest.mark.parametrize("name,args,needle", [
    ("read_file", "[1, 2]", "JSON object"),
    ("read_file", "{}", "path"),
    ("read_file", '{"path": 3}', "path"),
    ("read_file", '{"filename": "a"}', "filename"),
    ("run_checks", '{"level": "gpu"}', "level"),
    ("write_file", '{"path": "a"}', "content"),
])
def test_bad_arguments_are_tool_errors(name, args, needle):
    call = parse_openai_call(_oa(name, args))
    assert call.error and needle in call.error


def test_empty_arguments_mean_none():
    assert parse_openai_call(_oa("submit", "")).error is None
    assert parse_openai_call(_oa("list_files", "  ")).args().path == "."
    assert parse_openai_call(_oa("run_checks", '{"level": null}')).args() == RunChecksArgs(level=None)


def test_anthropic_tool_use_block():
    call = parse_anthropic_call({"type": "tool_use", "id": "toolu_1", "name": "run_checks", "input": {"level": "compile"}})
    assert call.error is None and call.args().level == "compile" and call.raw_arguments is None
    assert parse_anthropic_call({"type": "tool_use", "id": "t", "name": "shell", "input": {}}).error
    assert check_call("x", "submit", {"now": True}).error  # extra argument refused
