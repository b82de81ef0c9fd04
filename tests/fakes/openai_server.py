"""FIXTURE: a small OpenAI-protocol HTTP server for tests and benchmarks.

It stands in for a model: its answers are scripted by the test, never reported as
model results. It speaks real HTTP so the real `openai` SDK is exercised end to end.
With `cache` it reports usage as OpenAI's automatic prompt cache would
(tests/fakes/prompt_cache.py); else prompt tokens are words and nothing is cached.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from tests.fakes.prompt_cache import OpenAICache

Responder = Callable[[dict], str]


def default_responder(body: dict) -> str:
    """Answers '9.0' only when a skill block is in the prompt (a scripted 'skill helps')."""
    user = body["messages"][-1]["content"]
    return "Use cuda-capabilities = [\"9.0\"]." if "<skill>" in user else "Use sm_90."


class FakeOpenAIServer:
    def __init__(self, responder: Responder = default_responder, *, delay_s: float = 0.0,
                 fail_first: int = 0, fail_status: int = 500, cache: OpenAICache | None = None) -> None:
        self.responder, self.delay_s = responder, delay_s
        self.cache = cache
        self.fail_first, self.fail_status = fail_first, fail_status
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus
                # delayed ACKs add ~40 ms to every keep-alive response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server.lock:
                    server.requests.append(body)
                    failing = len(server.requests) <= server.fail_first
                if server.delay_s:
                    time.sleep(server.delay_s)
                if failing:
                    self._send(server.fail_status, {"error": {"message": "scripted failure", "type": "server_error"}})
                    return
                text = server.responder(body)
                prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                         "total_tokens": prompt_tokens + len(text.split())}
                if server.cache is not None:
                    usage = server.cache.usage(body, len(text.split()))
                self._send(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake-model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": usage,
                })

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 resets bursts of connections
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    """Serve in its own process (benchmarks: keeps the server off the harness's GIL).
    Prints the base URL on the first line of stdout, then serves until killed."""
    import argparse
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    server = FakeOpenAIServer(delay_s=args.delay)
    print(server.base_url, flush=True)
    sys.stdout.close()
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
