"""Anthropic's Messages API through the `anthropic` SDK."""

from __future__ import annotations

import time

import anthropic

from harness.models.base import ChatRequest, Completion, translate_sdk_error


class AnthropicClient:
    provider = "anthropic"

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None,
                 timeout_s: float = 300.0) -> None:
        self.model = model
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url,
                                           timeout=timeout_s, max_retries=0)

    def complete(self, request: ChatRequest) -> Completion:
        kwargs: dict = {}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        start = time.monotonic()
        try:
            resp = self._client.messages.create(
                model=self.model, max_tokens=request.max_tokens, system=request.system,
                messages=[{"role": "user", "content": request.user}], **kwargs)
        except anthropic.AnthropicError as err:
            raise translate_sdk_error(err, anthropic) from err
        text = "".join(block.text for block in resp.content if getattr(block, "type", "") == "text")
        usage = resp.usage
        cache_read = getattr(usage, "cache_read_input_tokens", 0) or 0
        cache_write = getattr(usage, "cache_creation_input_tokens", 0) or 0
        return Completion(
            text=text, model=resp.model, provider=self.provider,
            # Anthropic reports cached input apart from input_tokens; count all input.
            input_tokens=usage.input_tokens + cache_read + cache_write,
            output_tokens=usage.output_tokens, cached_tokens=cache_read,
            latency_s=time.monotonic() - start, stop_reason=resp.stop_reason)
