"""OpenAI and any OpenAI-compatible server (llama.cpp, vLLM, ...) through the `openai` SDK.

Prompt caching is automatic at OpenAI for a prefix of at least 1,024 tokens: the request
keeps the shared prefix first (system prompt, then the skill block at the head of the user
message) and, for OpenAI itself, names it with `prompt_cache_key` so calls sharing it are
routed to the same cache. Other servers get the same prefix ordering and no extra field.
"""

from __future__ import annotations

import hashlib
import time

import openai

from harness.models.base import ChatRequest, Completion, ModelCallError, translate_sdk_error
from harness.models.http import http_client


def prompt_cache_key(request: ChatRequest) -> str:
    """A name for the request's shared prefix: the same for every call of an arm."""
    prefix = f"{request.system}\0{request.user[:request.cache_prefix]}"
    return "kg-" + hashlib.sha256(prefix.encode()).hexdigest()[:32]


def chat_params(model: str, request: ChatRequest, *, provider: str) -> dict:
    """chat.completions.create's arguments for one request; a Batch API line sends the same."""
    params: dict = {"model": model, "max_tokens": request.max_tokens,
                    "messages": [{"role": "system", "content": request.system},
                                 {"role": "user", "content": request.user}]}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.prompt_cache and provider == "openai":
        params["prompt_cache_key"] = prompt_cache_key(request)
    return params


def completion_from_chat(resp, *, model: str, provider: str, latency_s: float = 0.0,
                         batch: bool = False) -> Completion:
    """A Completion from a ChatCompletion (a direct answer, or one line of a batch's output)."""
    if not resp.choices:
        raise ModelCallError("server", "response had no choices")
    choice = resp.choices[0]
    usage = resp.usage
    cached = 0
    if usage is not None and getattr(usage, "prompt_tokens_details", None) is not None:
        cached = usage.prompt_tokens_details.cached_tokens or 0
    return Completion(
        text=choice.message.content or "", model=resp.model or model, provider=provider,
        input_tokens=usage.prompt_tokens if usage else 0,
        output_tokens=usage.completion_tokens if usage else 0,
        cached_tokens=cached, latency_s=latency_s, stop_reason=choice.finish_reason, batch=batch)


class OpenAICompatClient:
    def __init__(self, model: str, *, provider: str = "openai", base_url: str | None = None,
                 api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.provider, self.model = provider, model
        # The SDK's own retries are off: tenacity (harness/models/retry.py) owns retrying,
        # so every attempt is counted and bounded in one place.
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout_s, max_retries=0,
                                     http_client=http_client(openai, timeout_s=timeout_s))

    def complete(self, request: ChatRequest) -> Completion:
        start = time.monotonic()
        try:
            resp = self._client.chat.completions.create(**chat_params(self.model, request, provider=self.provider))
        except openai.OpenAIError as err:
            raise translate_sdk_error(err, openai) from err
        return completion_from_chat(resp, model=self.model, provider=self.provider,
                                    latency_s=time.monotonic() - start)
