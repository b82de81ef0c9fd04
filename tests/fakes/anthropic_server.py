"""FIXTURE: a scripted Anthropic Messages API server (POST /v1/messages) for the real `anthropic` SDK.

Each request gets the next scripted content (a list of content blocks), else one text block;
requests are recorded for the test to inspect. It refuses sampling parameters as API version
2026-10-21 does (the version anthropic >= 2 sends), so a client that sends them fails here as it
would against the real API, and it refuses what the API refuses about cache_control (more than
4 breakpoints, a type other than ephemeral, an empty text block). With `cache` it reports usage
as Anthropic's prompt cache would (tests/fakes/prompt_cache.py); else a fixed usage.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakes.prompt_cache import AnthropicCache, anthropic_shape_error

SAMPLING = ("temperature", "top_p", "top_k")


class FakeAnthropicServer:
    def __init__(self, replies: list[list[dict]] | None = None, *, refuse_sampling: bool = True,
                 cache: AnthropicCache | None = None) -> None:
        self.replies = list(replies or [])
        self.cache = cache
        self.refuse_sampling = refuse_sampling
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                sent = [k for k in SAMPLING if k in body]
                if server.refuse_sampling and sent:
                    self._send(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                "message": f"{sent[0]}: Extra inputs are not permitted"}})
                    return
                shape = anthropic_shape_error(body)
                if shape:
                    self._send(400, {"type": "error", "error": {"type": "invalid_request_error", "message": shape}})
                    return
                content = server.replies.pop(0) if server.replies else [{"type": "text", "text": "ok 9.0"}]
                self._send(200, {
                    "id": f"msg_{len(server.requests)}", "type": "message", "role": "assistant", "model": body["model"],
                    "content": content, "stop_reason": "tool_use" if any(b["type"] == "tool_use" for b in content)
                    else "end_turn", "stop_sequence": None,
                    "usage": server.cache.usage(body, 5) if server.cache else
                    {"input_tokens": 50, "output_tokens": 5, "cache_read_input_tokens": 10,
                     "cache_creation_input_tokens": 0}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FakeAnthropicServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["SAMPLING", "FakeAnthropicServer"]
