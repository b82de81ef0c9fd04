"""Anthropic's Messages API through the `anthropic` SDK."""

from __future__ import annotations

import functools
import inspect
import time

import anthropic

from harness.models.base import ChatRequest, Completion, translate_sdk_error


@functools.cache
def sdk_takes_temperature() -> bool:
    """Whether the installed SDK's messages.create() takes `temperature`.

    anthropic >= 2 sends API version 2026-10-21, which removed the sampling parameters
    (temperature, top_p, top_k: a 400 even for 1.0), and its create() no longer has them
    (passing one is a TypeError). Older SDKs (pyproject allows >= 0.40) still take it, on the
    older API version. Read from the signature, not the version number, so a future SDK that
    brings it back is followed."""
    from anthropic.resources.messages import Messages

    return "temperature" in inspect.signature(Messages.create).parameters


def sampling_kwargs(temperature: float | None) -> dict:
    """The sampling arguments this SDK can send: none where it has no temperature (the
    provider's default applies, and the run records temperature None)."""
    return {"temperature": temperature} if temperature is not None and sdk_takes_temperature() else {}


class AnthropicClient:
    provider = "anthropic"

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None,
                 timeout_s: float = 300.0) -> None:
        self.model = model
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url,
                                           timeout=timeout_s, max_retries=0)

    @property
    def takes_temperature(self) -> bool:
        return sdk_takes_temperature()

    def complete(self, request: ChatRequest) -> Completion:
        start = time.monotonic()
        try:
            resp = self._client.messages.create(
                model=self.model, max_tokens=request.max_tokens, system=request.system,
                messages=[{"role": "user", "content": request.user}], **sampling_kwargs(request.temperature))
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
