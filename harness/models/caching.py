"""The prompt-cache prefix of a one-shot request: which leading part every call of an arm shares.

The prompt is built so the shared part comes first and is byte-identical across the arm's
calls (harness/prompts/build.py: the system prompt, then the skill block at the head of the
user message). Marking it changes no text; the clients decide how to tell their provider.
"""

from __future__ import annotations

from harness.models.base import ChatRequest


def shared_prefix(user: str, skill_block: str | None) -> int:
    """Characters at the head of `user` every call of the arm shares: the skill block with its
    header and footer (the with-skill arm), 0 without a skill block (only the system prompt)."""
    if not skill_block:
        return 0
    from harness.prompts.build import SKILL_FOOTER, SKILL_HEADER

    head = f"{SKILL_HEADER}{skill_block}{SKILL_FOOTER}"
    return len(head) if user.startswith(head) else 0


def cached_request(request: ChatRequest, skill_block: str | None, *, enabled: bool = True) -> ChatRequest:
    """The request marked for the provider's prompt cache, or marked off (--no-prompt-cache)."""
    prefix = shared_prefix(request.user, skill_block) if enabled else 0
    return request.model_copy(update={"prompt_cache": enabled, "cache_prefix": prefix})
