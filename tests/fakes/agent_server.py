"""FIXTURE: a scripted OpenAI-protocol server that answers with tool calls.

It stands in for an agent model: each chat.completions request gets the next scripted
reply (text and/or tool calls), never reported as a model result. It speaks real HTTP so
the real `openai` SDK is exercised end to end, and it holds the conversation to the
rules the OpenAI API enforces (every tool call answered by a role=tool message with its
id before anything else), so a harness that renders history wrongly gets a 400 as it
would from the real API. Requests are recorded for the test to inspect.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from harness.agent.providers import PROBE_TEXT


@dataclass
class Call:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict is sent as JSON; a string is sent as is (to script malformed JSON)."""
    id: str | None = None
    """None: the server numbers it (call_<request>_<index>)."""


@dataclass
class Reply:
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    error: str | None = None
    """Answer with a 400 and this message instead (e.g. a context-length refusal)."""


Step = Reply | Callable[[dict], Reply]
"""A fixed reply, or one computed from the request body (e.g. echo a tool result)."""

FINAL = Reply(text="done")
"""Sent once the script is used up: a plain answer with no tool calls."""


def history_problem(messages: list[dict]) -> str | None:
    """The OpenAI rule on tool messages: after an assistant turn with tool_calls, one
    role=tool message per call id, before any other message; no stray tool messages."""
    open_ids: list[str] = []
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role == "tool":
            if msg.get("tool_call_id") not in open_ids:
                return f"messages[{i}]: role 'tool' answers no open tool call ({msg.get('tool_call_id')!r})"
            open_ids.remove(msg["tool_call_id"])
            continue
        if open_ids:
            return f"messages[{i}]: tool calls {open_ids} have no role 'tool' answer before this message"
        if role == "assistant":
            open_ids = [c["id"] for c in msg.get("tool_calls") or []]
            if msg.get("content") is None and not open_ids:
                return f"messages[{i}]: assistant message with neither content nor tool_calls"
    return None


class FakeAgentServer:
    def __init__(self, steps: list[Step] | None = None, *, script: Callable[[dict], Reply] | None = None,
                 prompt_tokens: int | None = None, completion_tokens: int = 7, strict: bool = True,
                 tools: bool = True, delay_s: float = 0.0) -> None:
        self.steps = list(steps or [])
        self.delay_s = delay_s
        """Seconds before each scripted answer (a test can kill the harness mid-call)."""
        self.script = script
        """Answers every request from its body alone (e.g. by the turns it already holds), so
        any number of trajectories can run at once; used instead of `steps` when given."""
        self.prompt_tokens, self.completion_tokens, self.strict = prompt_tokens, completion_tokens, strict
        self.tools = tools
        """False: refuse any request carrying `tools` with a 400, as vLLM does without
        --enable-auto-tool-choice."""
        self.requests: list[dict] = []
        self.probes: list[dict] = []
        """kernelgrade's tool-support checks (harness.agent.providers.PROBE_TEXT): answered
        apart, so they use up no scripted step and are not in `requests`."""
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-call (the kill -9 test): nothing to answer

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake-agent", "object": "model"}]})

            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except (ValueError, OSError):  # a client killed while sending
                    return
                if not server.tools and body.get("tools"):
                    self._send(400, {"error": {"message": "tools are not supported by this server",
                                               "type": "invalid_request_error"}})
                    return
                if (body.get("messages") or [{}])[-1].get("content") == PROBE_TEXT:
                    with server.lock:
                        server.probes.append(body)
                    self._send(200, server.response(body, Reply(text="OK"), 0))
                    return
                problem = history_problem(body.get("messages", [])) if server.strict else None
                with server.lock:
                    server.requests.append(body)
                    index = len(server.requests)
                    step = server.script or (server.steps.pop(0) if server.steps else FINAL)
                if problem:
                    with server.lock:  # a refused request uses up no scripted step
                        if step is not FINAL and step is not server.script:
                            server.steps.insert(0, step)
                    self._send(400, {"error": {"message": problem, "type": "invalid_request_error"}})
                    return
                reply = step(body) if callable(step) else step
                if server.delay_s:
                    time.sleep(server.delay_s)
                if reply.error is not None:
                    self._send(400, {"error": {"message": reply.error, "type": "invalid_request_error"}})
                    return
                self._send(200, server.response(body, reply, index))

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def response(self, body: dict, reply: Reply, index: int) -> dict:
        calls = [{"id": c.id or f"call_{index}_{i}", "type": "function",
                  "function": {"name": c.name,
                               "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)}}
                 for i, c in enumerate(reply.calls)]
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if calls:
            message["tool_calls"] = calls
        prompt = self.prompt_tokens if self.prompt_tokens is not None else len(json.dumps(body.get("messages", [])).split())
        return {
            "id": f"chatcmpl-agent-{index}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake-agent"),
            "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop", "message": message}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": self.completion_tokens,
                      "total_tokens": prompt + self.completion_tokens},
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeAgentServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["FINAL", "Call", "FakeAgentServer", "Reply", "Step", "history_problem"]
