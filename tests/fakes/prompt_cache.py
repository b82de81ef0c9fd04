"""FIXTURE: the prompt-cache accounting of each provider, as a fixture server reports it.

Tokens are estimated at 4 characters each (the same estimate kernelgrade labels as one). What
is simulated is how each provider *reports* usage, not a model:

- Anthropic: explicit `cache_control` breakpoints (at most 4); a prefix shorter than the
  minimum cacheable length is not cached. The longest cached breakpoint prefix is read
  (`cache_read_input_tokens`); the prefix up to the last breakpoint beyond it is written
  (`cache_creation_input_tokens`); `input_tokens` is the rest.
- OpenAI: automatic for prompts of at least 1,024 tokens; the longest prefix seen before, in
  128-token steps from 1,024, is reported in `prompt_tokens_details.cached_tokens`, within
  `prompt_tokens`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading

CHARS_PER_TOKEN = 4


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _blocks(content) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def anthropic_prefixes(body: dict) -> tuple[str, list[int]]:
    """The request as one string in the provider's order (tools, system, messages) and the
    string positions where a cache_control breakpoint ends a prefix."""
    parts: list[str] = []
    marks: list[int] = []

    def add(piece: str, block: dict) -> None:
        parts.append(piece)
        if block.get("cache_control"):
            marks.append(sum(len(p) for p in parts))

    for tool in body.get("tools") or []:
        add(json.dumps({k: v for k, v in tool.items() if k != "cache_control"}, sort_keys=True), tool)
    for block in _blocks(body.get("system") or []):
        add(block.get("text", ""), block)
    for message in body["messages"]:
        parts.append(f"\0{message['role']}\0")
        for block in _blocks(message["content"]):
            add(block.get("text") or json.dumps({k: v for k, v in block.items() if k != "cache_control"},
                                                sort_keys=True), block)
    return "".join(parts), marks


def anthropic_shape_error(body: dict) -> str | None:
    """What the Messages API would refuse about the cache marking and the blocks, else None."""
    text, marks = anthropic_prefixes(body)
    if len(marks) > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {len(marks)}."
    blocks = _blocks(body.get("system") or []) + [b for m in body["messages"] for b in _blocks(m["content"])]
    for block in blocks + list(body.get("tools") or []):
        cc = block.get("cache_control")
        if cc is not None and cc.get("type") != "ephemeral":
            return f"cache_control.type: {cc.get('type')!r} is not 'ephemeral'"
        if block.get("type") == "text" and not block.get("text"):
            return "messages: text content blocks must be non-empty"
    return None


class AnthropicCache:
    def __init__(self, min_tokens: int = 1024) -> None:
        self.min_tokens = min_tokens
        self.cached: set[str] = set()
        self.lock = threading.Lock()

    def usage(self, body: dict, output_tokens: int) -> dict:
        text, marks = anthropic_prefixes(body)
        total = tokens(text)
        eligible = [m for m in marks if tokens(text[:m]) >= self.min_tokens]
        with self.lock:
            read = max((tokens(text[:m]) for m in eligible if _digest(text[:m]) in self.cached), default=0)
            write = max(tokens(text[:eligible[-1]]) - read, 0) if eligible else 0
            self.cached.update(_digest(text[:m]) for m in eligible)
        return {"input_tokens": total - read - write, "output_tokens": output_tokens,
                "cache_read_input_tokens": read, "cache_creation_input_tokens": write}


class OpenAICache:
    MIN_TOKENS, STEP = 1024, 128

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    @staticmethod
    def prompt_text(body: dict) -> str:
        return "".join(f"\0{m['role']}\0{m['content'] if isinstance(m['content'], str) else json.dumps(m['content'])}"
                       for m in body["messages"])

    def usage(self, body: dict, output_tokens: int) -> dict:
        text = self.prompt_text(body)
        total = tokens(text)
        steps = range(self.MIN_TOKENS, total + 1, self.STEP)
        digests = {n: _digest(text[:n * CHARS_PER_TOKEN]) for n in steps}
        with self.lock:
            cached = max((n for n, d in digests.items() if d in self.seen), default=0)
            self.seen.update(digests.values())
        return {"prompt_tokens": total, "completion_tokens": output_tokens, "total_tokens": total + output_tokens,
                "prompt_tokens_details": {"cached_tokens": cached}}


__all__ = ["AnthropicCache", "OpenAICache", "anthropic_prefixes", "anthropic_shape_error", "tokens"]
