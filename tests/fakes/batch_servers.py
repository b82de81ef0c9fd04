"""FIXTURE: both providers' batch endpoints over real HTTP, for the real `anthropic` and `openai` SDKs.

- FakeAnthropicBatches: POST /v1/messages/batches, GET .../{id}, GET .../{id}/results (JSONL),
  GET /v1/messages/batches (list, newest first).
- FakeOpenAIBatches: POST /v1/files (multipart, purpose=batch), POST /v1/batches,
  GET /v1/batches/{id}, GET /v1/batches (list), GET /v1/files/{id}/content (JSONL).

A test scripts what happens to a batch: how many polls before it ends, a `hold` event it
waits for, custom ids that error or expire (on their first submission only, so a resume can
answer them), or the whole batch expiring or failing. Answers are scripted (never model
results); usage is reported as each provider's prompt cache would (tests/fakes/prompt_cache.py),
requests processed in submission order. Every request a batch carries is checked for the shape
a direct call must have.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from tests.fakes.prompt_cache import AnthropicCache, OpenAICache, anthropic_shape_error

Responder = Callable[[str], str]


def skill_helps(prompt: str) -> str:
    """'9.0' only when the skill block is in the prompt (a scripted 'skill helps')."""
    return 'Use cuda-capabilities = ["9.0"].' if "<skill>" in prompt else "Use sm_90."


@dataclass
class FakeBatch:
    id: str
    created: float
    requests: list[dict]
    """[{"custom_id", "body"}] in submission order."""
    metadata: dict = field(default_factory=dict)
    polls: int = 0
    ended: bool = False
    results: dict[str, dict] = field(default_factory=dict)
    """custom id -> {"kind": succeeded | errored | expired, "body": ...}."""


class _BatchFixture:
    def __init__(self, *, polls_before_end: int = 0, hold: threading.Event | None = None,
                 errored: tuple[str, ...] = (), expired: tuple[str, ...] = (), expire_all: bool = False,
                 fail_batch: str | None = None, responder: Responder = skill_helps) -> None:
        self.polls_before_end, self.hold = polls_before_end, hold
        self.errored, self.expired, self.expire_all, self.fail_batch = set(errored), set(expired), expire_all, fail_batch
        self.responder = responder
        self.batches: dict[str, FakeBatch] = {}
        self.submitted: list[str] = []
        """Every custom id in every batch created, in order (a trial submitted twice shows twice)."""
        self.polls = 0
        self.lock = threading.Lock()
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def send(self, status: int, payload: dict | str, content_type: str = "application/json") -> None:
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self) -> None:
                with fixture.lock:
                    fixture.get(self)

            def do_POST(self) -> None:
                with fixture.lock:
                    fixture.post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def create(self, prefix: str, requests: list[dict], metadata: dict | None = None) -> FakeBatch:
        batch = FakeBatch(id=f"{prefix}_{len(self.batches) + 1:04d}", created=time.time(), requests=requests,
                          metadata=metadata or {})
        self.batches[batch.id] = batch
        self.submitted.extend(r["custom_id"] for r in requests)
        return batch

    def poll(self, batch: FakeBatch) -> None:
        """A retrieve: the batch ends once polled enough and not held; items are answered in order."""
        self.polls += 1
        batch.polls += 1
        if batch.ended or batch.polls <= self.polls_before_end or (self.hold and not self.hold.is_set()):
            return
        for item in batch.requests:
            cid = item["custom_id"]
            if self.expire_all or cid in self.expired:
                batch.results[cid] = {"kind": "expired"}
            elif cid in self.errored:
                batch.results[cid] = {"kind": "errored"}
            else:
                batch.results[cid] = {"kind": "succeeded", "body": self.answer(item["body"])}
        self.errored -= set(batch.results)  # scripted failures happen on the first submission only
        self.expired -= set(batch.results)
        batch.ended = True

    def answer(self, body: dict) -> dict:  # pragma: no cover - each provider's fixture answers
        raise NotImplementedError


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


class FakeAnthropicBatches(_BatchFixture):
    def __init__(self, *, cache: AnthropicCache | None = None, **script) -> None:
        super().__init__(**script)
        self.cache = cache or AnthropicCache()

    @property
    def base_url(self) -> str:
        return self.root

    def answer(self, body: dict) -> dict:
        user = "".join(b["text"] for b in body["messages"][-1]["content"]) if isinstance(
            body["messages"][-1]["content"], list) else body["messages"][-1]["content"]
        text = self.responder(user)
        return {"id": f"msg_{time.monotonic_ns()}", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": self.cache.usage(body, len(text.split()))}

    def view(self, batch: FakeBatch) -> dict:
        kinds = [r["kind"] for r in batch.results.values()]
        counts = {"processing": 0 if batch.ended else len(batch.requests), "succeeded": kinds.count("succeeded"),
                  "errored": kinds.count("errored"), "canceled": 0, "expired": kinds.count("expired")}
        return {"id": batch.id, "type": "message_batch", "processing_status": "ended" if batch.ended else "in_progress",
                "request_counts": counts, "created_at": _iso(batch.created), "expires_at": _iso(batch.created + 86400),
                "ended_at": _iso(time.time()) if batch.ended else None, "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": f"{self.root}/v1/messages/batches/{batch.id}/results" if batch.ended else None}

    def post(self, h) -> None:
        if h.path != "/v1/messages/batches":
            return h.send(404, {"type": "error", "error": {"type": "not_found_error", "message": h.path}})
        requests = json.loads(h.body())["requests"]
        for r in requests:
            problem = anthropic_shape_error(r["params"])
            if problem:
                return h.send(400, {"type": "error", "error": {"type": "invalid_request_error", "message": problem}})
        batch = self.create("msgbatch", [{"custom_id": r["custom_id"], "body": r["params"]} for r in requests])
        h.send(200, self.view(batch))

    def get(self, h) -> None:
        path = h.path.split("?")[0].rstrip("/")
        if path == "/v1/messages/batches":
            data = [self.view(b) for b in sorted(self.batches.values(), key=lambda b: b.created, reverse=True)]
            return h.send(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                "last_id": data[-1]["id"] if data else None})
        parts = path.split("/")
        batch = self.batches.get(parts[4]) if len(parts) > 4 else None
        if batch is None:
            return h.send(404, {"type": "error", "error": {"type": "not_found_error", "message": h.path}})
        if len(parts) == 5:
            self.poll(batch)
            return h.send(200, self.view(batch))
        lines = []
        for cid, r in batch.results.items():
            if r["kind"] == "succeeded":
                result = {"type": "succeeded", "message": r["body"]}
            elif r["kind"] == "errored":
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error", "message": "scripted failure"}}}
            else:
                result = {"type": "expired"}
            lines.append(json.dumps({"custom_id": cid, "result": result}))
        h.send(200, "\n".join(lines) + "\n", "application/binary")


class FakeOpenAIBatches(_BatchFixture):
    def __init__(self, *, cache: OpenAICache | None = None, **script) -> None:
        super().__init__(**script)
        self.cache = cache or OpenAICache()
        self.files: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def answer(self, body: dict) -> dict:
        text = self.responder(body["messages"][-1]["content"])
        return {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": text}}],
                "usage": self.cache.usage(body, len(text.split()))}

    def _file(self, text: str, name: str) -> dict:
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = text
        return {"id": file_id, "object": "file", "bytes": len(text), "created_at": int(time.time()),
                "filename": name, "purpose": "batch", "status": "processed"}

    def view(self, batch: FakeBatch) -> dict:
        kinds = [r["kind"] for r in batch.results.values()]
        status = "in_progress"
        out: dict = {}
        if batch.ended and self.fail_batch:
            status = "failed"
            out["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": self.fail_batch}]}
        elif batch.ended:
            status = "expired" if "expired" in kinds else "completed"
            out = self._output_files(batch)
        return {"id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions", "completion_window": "24h",
                "input_file_id": batch.metadata["input_file_id"], "status": status, "created_at": int(batch.created),
                "metadata": batch.metadata.get("metadata"), **out,
                "request_counts": {"total": len(batch.requests), "completed": kinds.count("succeeded"),
                                   "failed": len(kinds) - kinds.count("succeeded")}}

    def _output_files(self, batch: FakeBatch) -> dict:
        if "output_file_id" in batch.metadata:
            return {k: batch.metadata[k] for k in ("output_file_id", "error_file_id")}
        good, bad = [], []
        for n, (cid, r) in enumerate(batch.results.items()):
            line = {"id": f"batch_req_{n}", "custom_id": cid, "response": None, "error": None}
            if r["kind"] == "succeeded":
                line["response"] = {"status_code": 200, "request_id": f"req_{n}", "body": r["body"]}
                good.append(json.dumps(line))
            elif r["kind"] == "errored":
                line["response"] = {"status_code": 400, "request_id": f"req_{n}", "body": {"error": {
                    "message": "scripted failure", "type": "invalid_request_error"}}}
                bad.append(json.dumps(line))
            else:
                line["error"] = {"code": "batch_expired", "message": "This request could not be executed before "
                                                                      "the completion window expired."}
                bad.append(json.dumps(line))
        batch.metadata["output_file_id"] = self._file("\n".join(good) + "\n", "output.jsonl")["id"] if good else None
        batch.metadata["error_file_id"] = self._file("\n".join(bad) + "\n", "errors.jsonl")["id"] if bad else None
        return {k: batch.metadata[k] for k in ("output_file_id", "error_file_id")}

    def post(self, h) -> None:
        raw = h.body()
        if h.path == "/v1/files":
            message = BytesParser().parsebytes(f"Content-Type: {h.headers['Content-Type']}\r\n\r\n".encode() + raw)
            parts = {p.get_param("name", header="content-disposition"): p for p in message.get_payload()}
            assert parts["purpose"].get_payload(decode=True) == b"batch"
            upload = parts["file"]
            return h.send(200, self._file(upload.get_payload(decode=True).decode(), upload.get_filename()))
        if h.path == "/v1/batches":
            body = json.loads(raw)
            lines = [json.loads(x) for x in self.files[body["input_file_id"]].splitlines() if x.strip()]
            assert all(x["url"] == body["endpoint"] == "/v1/chat/completions" for x in lines)
            batch = self.create("batch", [{"custom_id": x["custom_id"], "body": x["body"]} for x in lines],
                                {"input_file_id": body["input_file_id"], "metadata": body.get("metadata")})
            return h.send(200, self.view(batch))
        h.send(404, {"error": {"message": h.path, "type": "invalid_request_error"}})

    def get(self, h) -> None:
        path = h.path.split("?")[0].rstrip("/")
        parts = path.split("/")
        if path == "/v1/batches":
            data = [self.view(b) for b in sorted(self.batches.values(), key=lambda b: b.created, reverse=True)]
            return h.send(200, {"object": "list", "data": data, "has_more": False,
                                "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})
        if path.startswith("/v1/batches/") and parts[3] in self.batches:
            batch = self.batches[parts[3]]
            self.poll(batch)
            return h.send(200, self.view(batch))
        if path.startswith("/v1/files/") and path.endswith("/content") and parts[3] in self.files:
            return h.send(200, self.files[parts[3]], "application/octet-stream")
        h.send(404, {"error": {"message": h.path, "type": "invalid_request_error"}})


__all__ = ["FakeAnthropicBatches", "FakeBatch", "FakeOpenAIBatches", "skill_helps"]
