"""OpenAI and any OpenAI-compatible server (llama.cpp, vLLM, ...) through the `openai` SDK."""

from __future__ import annotations

import time

import openai

from harness.models.base import ChatRequest, Completion, ModelCallError, translate_sdk_error


class OpenAICompatClient:
    def __init__(self, model: str, *, provider: str = "openai", base_url: str | None = None,
                 api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.provider, self.model = provider, model
        # The SDK's own retries are off: tenacity (harness/models/retry.py) owns retrying,
        # so every attempt is counted and bounded in one place.
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout_s, max_retries=0)

    def complete(self, request: ChatRequest) -> Completion:
        kwargs: dict = {}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        start = time.monotonic()
        try:
            resp = self._client.chat.completions.create(
                model=self.model, max_tokens=request.max_tokens,
                messages=[{"role": "system", "content": request.system},
                          {"role": "user", "content": request.user}], **kwargs)
        except openai.OpenAIError as err:
            raise translate_sdk_error(err, openai) from err
        latency = time.monotonic() - start
        if not resp.choices:
            raise ModelCallError("server", "response had no choices")
        choice = resp.choices[0]
        usage = resp.usage
        cached = 0
        if usage is not None and getattr(usage, "prompt_tokens_details", None) is not None:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        return Completion(
            text=choice.message.content or "", model=resp.model or self.model, provider=self.provider,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=cached, latency_s=latency, stop_reason=choice.finish_reason)
