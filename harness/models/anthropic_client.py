"""Anthropic's Messages API through the `anthropic` SDK.

Prompt caching: with `ChatRequest.prompt_cache` the system prompt goes as a content block and
the shared prefix (system prompt, then the skill block at the head of the user message) ends
in a `cache_control` breakpoint: on the skill block when the arm has one, else on the system
block. The blocks join to exactly the text sent without caching; only the marking differs.
"""

from __future__ import annotations

import functools
import inspect
import time

import anthropic

from harness.models.base import ChatRequest, Completion, translate_sdk_error
from harness.models.http import http_client

#: A 5-minute breakpoint: the default TTL, and the cache-write price in the price table (1.25x).
EPHEMERAL = {"type": "ephemeral"}


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


def _text(text: str, *, cache: bool = False) -> dict:
    block: dict = {"type": "text", "text": text}
    if cache:
        block["cache_control"] = dict(EPHEMERAL)
    return block


def message_params(model: str, request: ChatRequest) -> dict:
    """messages.create's arguments for one request; a Message Batches item sends the same."""
    params: dict = {"model": model, "max_tokens": request.max_tokens, **sampling_kwargs(request.temperature)}
    if not request.prompt_cache:
        return params | {"system": request.system, "messages": [{"role": "user", "content": request.user}]}
    head, tail = request.user[:request.cache_prefix], request.user[request.cache_prefix:]
    content = ([_text(head, cache=True)] if head else []) + ([_text(tail)] if tail or not head else [])
    if request.system:
        params["system"] = [_text(request.system, cache=not head)]
    return params | {"messages": [{"role": "user", "content": content}]}


def completion_from_message(message, *, latency_s: float = 0.0, batch: bool = False) -> Completion:
    """A Completion from a Message (a direct answer, or one result of a batch)."""
    text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
    usage = message.usage
    cache_read = getattr(usage, "cache_read_input_tokens", 0) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", 0) or 0
    return Completion(
        text=text, model=message.model, provider="anthropic",
        # Anthropic reports cache reads and writes apart from input_tokens; count all input.
        input_tokens=usage.input_tokens + cache_read + cache_write,
        output_tokens=usage.output_tokens, cached_tokens=cache_read, cache_write_tokens=cache_write,
        latency_s=latency_s, stop_reason=message.stop_reason, batch=batch)


class AnthropicClient:
    provider = "anthropic"

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None,
                 timeout_s: float = 300.0) -> None:
        self.model = model
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0,
                                           http_client=http_client(anthropic, timeout_s=timeout_s))

    @property
    def takes_temperature(self) -> bool:
        return sdk_takes_temperature()

    def complete(self, request: ChatRequest) -> Completion:
        start = time.monotonic()
        try:
            resp = self._client.messages.create(**message_params(self.model, request))
        except anthropic.AnthropicError as err:
            raise translate_sdk_error(err, anthropic) from err
        return completion_from_message(resp, latency_s=time.monotonic() - start)
