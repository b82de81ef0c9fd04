"""The providers' batch APIs through their official SDKs: Anthropic Message Batches and the
OpenAI Batch API. One small interface: submit requests under custom ids, poll, read the results.

A batch item sends exactly what a direct call sends (anthropic_client.message_params,
openai_compat.chat_params: the same prompt text and cache marking). Results come back as
Completions flagged `batch` (billed at batch prices) or as one-line errors for items that
errored, expired or were canceled. `find` recovers a batch whose id was never stored (the
process died between the provider accepting it and the store recording its id), so a resume
re-attaches to it instead of submitting its trials again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator, Protocol

from harness.models.base import ChatRequest, Completion, ModelCallError, translate_sdk_error

log = logging.getLogger(__name__)

#: Requests per batch: well under both providers' limits (Anthropic 100,000 or 256 MB;
#: OpenAI 50,000 or 200 MB), and a prompt with the shipped skill is ~25 kB.
MAX_REQUESTS = 5000
#: How far back (seconds) `find` looks for a batch submitted before its id was stored.
FIND_WINDOW_S = 600.0


@dataclass(frozen=True)
class BatchState:
    """What a poll says: whether processing has ended, in the provider's words."""

    ended: bool
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    detail: str = ""
    """Why a batch failed as a whole (OpenAI validation errors), else empty."""


@dataclass(frozen=True)
class BatchResult:
    """One item's outcome: a completion, or the one-line reason there is none."""

    custom_id: str
    completion: Completion | None = None
    error: str | None = None


class BatchClient(Protocol):
    provider: str
    model: str

    def submit(self, items: list[tuple[str, ChatRequest]], *, token: str) -> str: ...

    def poll(self, batch_id: str) -> BatchState: ...

    def results(self, batch_id: str) -> Iterator[BatchResult]: ...

    def find(self, token: str, *, since: float, count: int) -> str | None: ...


class AnthropicBatches:
    provider = "anthropic"

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, timeout_s: float = 300.0) -> None:
        import anthropic

        self.model, self._sdk = model, anthropic
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)

    @property
    def takes_temperature(self) -> bool:
        from harness.models.anthropic_client import sdk_takes_temperature

        return sdk_takes_temperature()

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._sdk.AnthropicError as err:
            raise translate_sdk_error(err, self._sdk) from err

    def submit(self, items: list[tuple[str, ChatRequest]], *, token: str) -> str:
        from harness.models.anthropic_client import message_params

        requests = [{"custom_id": cid, "params": message_params(self.model, req)} for cid, req in items]
        return self._call(self._client.messages.batches.create, requests=requests).id

    def poll(self, batch_id: str) -> BatchState:
        batch = self._call(self._client.messages.batches.retrieve, batch_id)
        return BatchState(ended=batch.processing_status == "ended", status=batch.processing_status,
                          counts=batch.request_counts.model_dump())

    def results(self, batch_id: str) -> Iterator[BatchResult]:
        from harness.models.anthropic_client import completion_from_message

        for line in self._call(self._client.messages.batches.results, batch_id):
            result = line.result
            if result.type == "succeeded":
                yield BatchResult(line.custom_id, completion_from_message(result.message, batch=True))
            elif result.type == "errored":
                err = result.error.error
                yield BatchResult(line.custom_id, error=f"batch item errored: {err.type}: {err.message}")
            else:  # expired (not processed within 24 h) or canceled
                yield BatchResult(line.custom_id, error=f"batch item {result.type}: the provider did not answer it")

    def find(self, token: str, *, since: float, count: int) -> str | None:
        """Message batches carry no metadata: the one batch created since `since` (less a
        minute of clock skew) with exactly `count` requests, else None; several such is an error."""
        found = []
        for batch in self._call(self._client.messages.batches.list, limit=100):
            created = batch.created_at.timestamp()
            if created < since - FIND_WINDOW_S:
                break  # newest first
            total = sum(batch.request_counts.model_dump().values())
            if created >= since - 60 and total == count:
                found.append(batch.id)
        if len(found) > 1:
            raise ModelCallError("other", f"{len(found)} message batches of {count} requests were created when "
                                          f"batch {token} was submitted; cannot tell which is ours")
        return found[0] if found else None


class OpenAIBatches:
    provider = "openai"
    ENDPOINT = "/v1/chat/completions"
    ENDED = ("completed", "expired", "cancelled", "failed")

    def __init__(self, model: str, *, api_key: str | None, base_url: str | None = None,
                 timeout_s: float = 300.0) -> None:
        import openai

        self.model, self._sdk = model, openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._sdk.OpenAIError as err:
            raise translate_sdk_error(err, self._sdk) from err

    def submit(self, items: list[tuple[str, ChatRequest]], *, token: str) -> str:
        from harness.models.openai_compat import chat_params

        lines = [json.dumps({"custom_id": cid, "method": "POST", "url": self.ENDPOINT,
                             "body": chat_params(self.model, req, provider="openai")}) for cid, req in items]
        data = ("\n".join(lines) + "\n").encode()
        upload = self._call(self._client.files.create, file=(f"kernelgrade-{token}.jsonl", data), purpose="batch")
        batch = self._call(self._client.batches.create, input_file_id=upload.id, endpoint=self.ENDPOINT,
                           completion_window="24h", metadata={"kernelgrade_batch": token})
        return batch.id

    def poll(self, batch_id: str) -> BatchState:
        batch = self._call(self._client.batches.retrieve, batch_id)
        detail = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data or [])) if batch.errors else ""
        counts = batch.request_counts.model_dump() if batch.request_counts else {}
        return BatchState(ended=batch.status in self.ENDED, status=batch.status, counts=counts, detail=detail)

    def results(self, batch_id: str) -> Iterator[BatchResult]:
        from openai.types.chat import ChatCompletion

        from harness.models.openai_compat import completion_from_chat

        batch = self._call(self._client.batches.retrieve, batch_id)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for raw in self._call(self._client.files.content, file_id).iter_lines():
                if not raw.strip():
                    continue
                line = json.loads(raw)
                cid, response, error = line.get("custom_id", ""), line.get("response") or {}, line.get("error")
                body = response.get("body") or {}
                if error:
                    yield BatchResult(cid, error=f"batch item failed: {error.get('code')}: {error.get('message')}")
                elif response.get("status_code") != 200:
                    message = (body.get("error") or {}).get("message", "no detail")
                    yield BatchResult(cid, error=f"batch item failed: HTTP {response.get('status_code')}: {message}")
                else:
                    try:
                        completion = completion_from_chat(ChatCompletion.model_validate(body), model=self.model,
                                                          provider=self.provider, batch=True)
                    except ModelCallError as err:
                        yield BatchResult(cid, error=f"batch item failed: {err}")
                        continue
                    yield BatchResult(cid, completion)

    def find(self, token: str, *, since: float, count: int) -> str | None:
        for batch in self._call(self._client.batches.list, limit=100):
            if batch.created_at < since - FIND_WINDOW_S:
                break  # newest first
            if (batch.metadata or {}).get("kernelgrade_batch") == token:
                return batch.id
        return None


def make_batch_client(spec, *, timeout_s: float = 300.0) -> BatchClient:
    """The batch client for a resolved model (harness.models.registry.ModelSpec): Anthropic or OpenAI."""
    import os

    if spec.provider == "anthropic":
        return AnthropicBatches(spec.model_id, api_key=os.environ[spec.key_env or "ANTHROPIC_API_KEY"],
                                base_url=spec.base_url, timeout_s=timeout_s)
    if spec.provider == "openai":
        return OpenAIBatches(spec.model_id, api_key=os.environ.get(spec.key_env or "OPENAI_API_KEY"),
                             base_url=spec.base_url, timeout_s=timeout_s)
    raise ValueError(f"{spec.name}: no batch API for provider {spec.provider}")


def now_unix() -> float:
    return datetime.now(timezone.utc).timestamp()


__all__ = ["MAX_REQUESTS", "AnthropicBatches", "BatchClient", "BatchResult", "BatchState", "OpenAIBatches",
           "make_batch_client", "now_unix"]
