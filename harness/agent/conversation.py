"""A trial's trajectory, provider-neutral: the unit that is stored and re-sent.

A conversation is a system prompt and a flat list of steps: user messages, assistant
turns (text, tool calls, usage) and tool results, one result per call. Each step is one
stored row, written before the next model call; a result is its own step so that a
resume re-runs only the calls whose results were not stored (issue 17, "Durability").
The renderers turn the same steps into each provider's message format.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from harness.agent.tools import ToolCall


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Counted within input_tokens, as in harness.models.base.Completion."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     cached_tokens=self.cached_tokens + other.cached_tokens)


class UserStep(BaseModel):
    role: Literal["user"] = "user"
    text: str


class AssistantStep(BaseModel):
    role: Literal["assistant"] = "assistant"
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    """The model id the provider reported."""
    stop_reason: str | None = None
    latency_s: float = 0.0
    attempts: int = 1
    """Calls made for this step (retries included); RetryingClient sets it."""


class ToolResultStep(BaseModel):
    role: Literal["tool"] = "tool"
    call_id: str
    name: str
    content: str
    """Exactly the text the model is sent (errors start with 'tool error: ')."""
    is_error: bool = False
    detail: dict[str, Any] | None = None
    """What the harness keeps and the model never sees: run_checks' grade (verdict, level,
    results) for pass@turn, write_file's path and size for rebuilding the workspace."""
    wall_s: float = 0.0


Outcome = Literal["submitted", "final_message", "ran_out_turns", "ran_out_tokens", "ran_out_context"]
"""How a trajectory ended. The ran_out_* outcomes are graded as the workspace stands and
counted as "ran out" in the report (issue 17)."""


class EndStep(BaseModel):
    """The last stored row of a finished trajectory, written before the final grade: a resume
    that finds it grades without calling the model again. Never sent to a model."""

    role: Literal["end"] = "end"
    outcome: Outcome
    detail: str = ""
    """Why, in words (e.g. the provider's context-length error)."""


AnyStep = Union[UserStep, AssistantStep, ToolResultStep, EndStep]
Step = Annotated[AnyStep, Field(discriminator="role")]
_STEP = TypeAdapter(Step)


def step_to_json(step: AnyStep) -> str:
    return step.model_dump_json()


def step_from_json(text: str) -> AnyStep:
    return _STEP.validate_json(text)


class Conversation(BaseModel):
    system: str
    steps: list[Step] = Field(default_factory=list)

    # -- reading the trajectory ------------------------------------------------------

    def usage(self) -> Usage:
        total = Usage()
        for s in self.steps:
            if isinstance(s, AssistantStep):
                total = total + s.usage
        return total

    def turns(self) -> int:
        """Model calls made: one per assistant step."""
        return sum(isinstance(s, AssistantStep) for s in self.steps)

    def unanswered_calls(self) -> list[ToolCall]:
        """Calls of the last assistant step that have no stored result yet (resume runs these)."""
        last = next((i for i in range(len(self.steps) - 1, -1, -1)
                     if isinstance(self.steps[i], AssistantStep)), None)
        if last is None:
            return []
        done = {s.call_id for s in self.steps[last + 1:] if isinstance(s, ToolResultStep)}
        return [c for c in self.steps[last].tool_calls if c.id not in done]  # type: ignore[union-attr]

    def end(self) -> EndStep | None:
        return self.steps[-1] if self.steps and isinstance(self.steps[-1], EndStep) else None

    def call_ids(self) -> set[str]:
        return {c.id for s in self.steps if isinstance(s, AssistantStep) for c in s.tool_calls}

    def final_text(self) -> str:
        """The last assistant text: what text cases grade in agent mode."""
        return next((s.text for s in reversed(self.steps) if isinstance(s, AssistantStep) and s.text), "")

    # -- rendering -------------------------------------------------------------------

    def to_openai(self, *, tool_results_as_user: bool = False) -> list[dict[str, Any]]:
        """Chat Completions messages. `tool_results_as_user` is for llama-cpp-python's
        chatml-function-calling format, whose template drops role=tool messages and needs
        assistant content to be a string: results go back as one user message instead."""
        out: list[dict[str, Any]] = [{"role": "system", "content": self.system}]
        pending: list[str] = []

        def flush() -> None:
            if pending:
                out.append({"role": "user", "content": "\n\n".join(pending)})
                pending.clear()

        for s in self.steps:
            if isinstance(s, EndStep):
                continue
            if isinstance(s, ToolResultStep):
                if tool_results_as_user:
                    # No call id: that template never shows ids, and llama-cpp-python makes random
                    # ones, which would make every prompt (and so a greedy model's answer) unrepeatable.
                    pending.append(f"[result of {s.name}]\n{s.content}")
                else:
                    out.append({"role": "tool", "tool_call_id": s.call_id, "content": s.content})
                continue
            flush()
            if isinstance(s, UserStep):
                out.append({"role": "user", "content": s.text})
            else:
                msg: dict[str, Any] = {"role": "assistant"}
                msg["content"] = s.text if (s.text or tool_results_as_user or not s.tool_calls) else None
                if s.tool_calls:
                    msg["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                        "name": c.name,
                        # Re-sent verbatim, malformed or not: the model sees what it really wrote.
                        "arguments": c.raw_arguments if c.raw_arguments is not None else json.dumps(c.arguments)}}
                        for c in s.tool_calls]
                out.append(msg)
        flush()
        return out

    def to_anthropic(self) -> tuple[str, list[dict[str, Any]]]:
        """(system, messages) for the Messages API: tool_use blocks in assistant turns,
        tool_result blocks in the user turn after them; consecutive user content is merged
        into one message, results first, as the API requires."""
        messages: list[dict[str, Any]] = []

        def add(role: str, blocks: list[dict[str, Any]]) -> None:
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": role, "content": blocks})

        for s in self.steps:
            if isinstance(s, EndStep):
                continue
            if isinstance(s, UserStep):
                add("user", [{"type": "text", "text": s.text}])
            elif isinstance(s, ToolResultStep):
                add("user", [{"type": "tool_result", "tool_use_id": s.call_id, "content": s.content,
                              "is_error": s.is_error}])
            else:
                blocks: list[dict[str, Any]] = [{"type": "text", "text": s.text}] if s.text else []
                blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                           for c in s.tool_calls]
                # The API refuses an empty assistant turn; only a reply with nothing in it gets here.
                add("assistant", blocks or [{"type": "text", "text": "(empty reply)"}])
        return self.system, messages


__all__ = ["AnyStep", "AssistantStep", "Conversation", "EndStep", "Outcome", "Step", "ToolResultStep", "Usage",
           "UserStep", "step_from_json", "step_to_json"]
