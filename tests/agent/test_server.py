"""The real openai / anthropic SDKs over HTTP against scripted agent servers."""

from __future__ import annotations

import json

import pytest

from harness.agent.conversation import AssistantStep, ToolResultStep
from harness.agent.providers import AgentRequest, AnthropicAgentClient, OpenAIAgentClient
from harness.agent.workspace import Workspace
from harness.models.base import ModelCallError
from harness.models.retry import RetryingClient
from tests.fakes.agent_server import Call, FakeAgentServer, Reply

from tests.agent.agent_helpers import mini_loop, restored, results

BROKEN = "__global__ void relu(float* x) { x[0] = 0 }\n"
FIXED = "__global__ void relu(float* x) { x[0] = 0; }\n"


def fake_checks(ws: Workspace):
    def run(level):
        src = ws.read_file("relu_cuda/relu.cu")
        if "0 }" in src:
            return ("checks at level compile on cuda: FAIL\n- compile: fail\n    relu_cuda/relu.cu:1: expected ';'",
                    {"verdict": "fail", "level": level or "compile"})
        return "checks at level compile on cuda: PASS", {"verdict": "pass", "level": level or "compile"}
    return run


def script() -> list:
    def fix_after_seeing_error(body: dict) -> Reply:
        last = body["messages"][-1]
        assert last["role"] == "tool" and "relu.cu:1: expected ';'" in last["content"]
        return Reply(calls=[Call("write_file", {"path": "relu_cuda/relu.cu", "content": FIXED})])

    return [
        Reply(text="Let me read the skill.", calls=[Call("read_file", {"path": "skill/SKILL.md"})]),
        Reply(calls=[Call("write_file", {"path": "build.toml", "content": "[general]\n"}),
                     Call("write_file", {"path": "relu_cuda/relu.cu", "content": BROKEN})]),
        Reply(calls=[Call("run_checks", {})]),
        fix_after_seeing_error,
        Reply(calls=[Call("run_checks", {"level": "compile"})]),
        Reply(calls=[Call("submit", {})]),
    ]


def test_scripted_trajectory_over_the_real_sdk(ws_skill: Workspace):
    stored: list[str] = []
    with FakeAgentServer(script(), prompt_tokens=100) as server:
        client = RetryingClient(OpenAIAgentClient("fake-agent", base_url=server.base_url), attempts=2)
        conv, how = mini_loop(client, ws_skill, fake_checks(ws_skill), stored=stored)
    assert how == "submitted" and conv.turns() == 6
    assert ws_skill.read_file("relu_cuda/relu.cu") == FIXED
    checks = [r.detail["verdict"] for r in results(conv) if r.name == "run_checks"]
    assert checks == ["fail", "pass"]
    assert not any(r.is_error for r in results(conv))
    assert conv.usage().input_tokens == 600 and conv.usage().output_tokens == 42
    assert all(s.attempts == 1 for s in conv.steps if isinstance(s, AssistantStep))
    # Every request carried the five tools and tool_choice auto, and a history the API accepts.
    assert len(server.requests) == 6
    for body in server.requests:
        assert [t["function"]["name"] for t in body["tools"]] == ["read_file", "write_file", "list_files",
                                                                  "run_checks", "submit"]
        assert body["tool_choice"] == "auto"
    second = server.requests[1]["messages"]
    assert second[-1] == {"role": "tool", "tool_call_id": "call_1_0", "content": ws_skill.read_file("skill/SKILL.md")}
    # What was stored is the whole trajectory, each step once, and renders the same again.
    again = restored(stored)
    assert again.steps == conv.steps
    assert again.to_openai() == conv.to_openai()


def test_bad_input_goes_back_as_tool_errors_and_the_trial_goes_on(ws_base: Workspace):
    steps = [
        Reply(calls=[Call("write_file", '{"path": "a.cu", "content": "unterminated')]),
        Reply(calls=[Call("bash", {"cmd": "nvcc a.cu"})]),
        Reply(calls=[Call("write_file", {"path": "../escape.cu", "content": "x"})]),
        Reply(calls=[Call("write_file", {"path": "skill/SKILL.md", "content": "x"})]),
        Reply(calls=[Call("read_file", {"path": "skill/SKILL.md"})]),
        Reply(text="I am done."),
    ]
    with FakeAgentServer(steps) as server:
        conv, how = mini_loop(OpenAIAgentClient("m", base_url=server.base_url), ws_base, fake_checks(ws_base))
    assert how == "final_message" and conv.final_text() == "I am done."
    errs = [r.content for r in results(conv)]
    assert len(errs) == 5 and all(e.startswith("tool error: ") for e in errs)
    for needle, err in zip(["malformed JSON", "unknown tool 'bash'", "'..'", "read-only", "no such file"], errs):
        assert needle in err
    # The model was told each error in the next request.
    for body, err in zip(server.requests[1:], errs):
        assert body["messages"][-1]["content"] == err
    assert ws_base.project_files() == []


def test_turn_limit_ends_the_trial(ws_base: Workspace):
    with FakeAgentServer([Reply(calls=[Call("list_files", {})])] * 5) as server:
        conv, how = mini_loop(OpenAIAgentClient("m", base_url=server.base_url), ws_base, fake_checks(ws_base),
                              max_turns=3)
    assert how == "ran_out" and conv.turns() == 3 and len(server.requests) == 3


def test_a_wrong_history_is_refused_as_the_api_would(ws_base: Workspace):
    from harness.agent.conversation import Conversation, UserStep
    from harness.agent.tools import check_call

    conv = Conversation(system="s", steps=[UserStep(text="t"),
                                           AssistantStep(tool_calls=[check_call("x1", "submit", {})]),
                                           UserStep(text="no result given")])
    with FakeAgentServer([Reply(text="never sent")]) as server:
        with pytest.raises(ModelCallError) as err:
            OpenAIAgentClient("m", base_url=server.base_url).complete(AgentRequest(conversation=conv))
    assert err.value.kind == "bad_request" and "no role 'tool' answer" in str(err.value)


def test_missing_or_repeated_call_ids_are_made_unique(ws_base: Workspace):
    steps = [Reply(calls=[Call("list_files", {}, id="same"), Call("list_files", {}, id="same")]), Reply(text="ok")]
    with FakeAgentServer(steps) as server:
        conv, _ = mini_loop(OpenAIAgentClient("m", base_url=server.base_url), ws_base, fake_checks(ws_base))
    ids = [c.id for c in conv.steps[1].tool_calls]
    assert ids[0] == "same" and ids[1] != "same" and len(server.requests) == 2


def test_anthropic_client_over_the_real_sdk(ws_skill: Workspace):
    """Anthropic's SDK over HTTP against a scripted /v1/messages: tool_use in, tool_result back."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    replies = [
        [{"type": "text", "text": "reading"}, {"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                               "input": {"path": "skill/SKILL.md"}}],
        [{"type": "tool_use", "id": "toolu_2", "name": "submit", "input": {}}],
    ]
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            data = json.dumps({
                "id": f"msg_{len(seen)}", "type": "message", "role": "assistant", "model": body["model"],
                "content": replies[len(seen) - 1], "stop_reason": "tool_use", "stop_sequence": None,
                "usage": {"input_tokens": 50, "output_tokens": 5, "cache_read_input_tokens": 10,
                          "cache_creation_input_tokens": 0}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = AnthropicAgentClient("claude-test", api_key="k",
                                      base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
        conv, how = mini_loop(client, ws_skill, fake_checks(ws_skill))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert how == "submitted"
    assert conv.steps[1].text == "reading" and conv.steps[1].usage.input_tokens == 60
    assert conv.steps[1].usage.cached_tokens == 10
    assert [t["name"] for t in seen[0]["tools"]][0] == "read_file" and seen[0]["tool_choice"] == {"type": "auto"}
    result_block = seen[1]["messages"][-1]["content"][0]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == "toolu_1"
    assert isinstance(conv.steps[2], ToolResultStep) and "cuda-capabilities" in conv.steps[2].content
