"""One agent step: the conversation so far plus the tools -> the next AssistantStep.

Native tool calling of each SDK: Anthropic tool use, OpenAI tools (and every
OpenAI-compatible server). The clients keep harness.models' conventions: SDK retries
off (harness.models.retry.RetryingClient owns them and works on these clients
unchanged: it calls `complete` and sets `.attempts` on what comes back), SDK errors
mapped through translate_sdk_error, cached input counted within input tokens.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from harness.agent.conversation import AssistantStep, Conversation, Usage
from harness.agent.tools import ToolCall, anthropic_tools, openai_tools, parse_anthropic_call, parse_openai_call
from harness.models.base import ModelCallError, translate_sdk_error
from harness.models.local_server import MODEL_ID
from harness.models.registry import ModelSpec
from harness.models.retry import RetryingClient


class AgentRequest(BaseModel):
    conversation: Conversation
    max_tokens: int = 4096
    temperature: float | None = 1.0


def _unique_ids(calls: list[ToolCall], conv: Conversation) -> list[ToolCall]:
    """Every call needs an id its result can name, unique in the whole trajectory (the store
    keys results by it); some servers send none, or number their calls afresh each turn."""
    seen = conv.call_ids()
    turn = conv.turns()
    for i, call in enumerate(calls):
        if not call.id or call.id in seen:
            call.id = f"call_{turn}_{i}"
            n = 0
            while call.id in seen:
                n += 1
                call.id = f"call_{turn}_{i}_{n}"
        seen.add(call.id)
    return calls


class OpenAIAgentClient:
    def __init__(self, model: str, *, provider: str = "openai", base_url: str | None = None,
                 api_key: str | None = None, timeout_s: float = 300.0, tool_results_as_user: bool = False) -> None:
        import openai

        self.provider, self.model = provider, model
        self.tool_results_as_user = tool_results_as_user
        """True for the embedded llama.cpp server (chatml-function-calling drops role=tool)."""
        self._sdk = openai
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout_s, max_retries=0)

    def complete(self, request: AgentRequest) -> AssistantStep:
        kwargs: dict = {}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        conv = request.conversation
        start = time.monotonic()
        try:
            # tool_choice is sent explicitly: llama-cpp-python ignores `tools` without it.
            resp = self._client.chat.completions.create(
                model=self.model, max_tokens=request.max_tokens, tools=openai_tools(), tool_choice="auto",
                messages=conv.to_openai(tool_results_as_user=self.tool_results_as_user), **kwargs)
        except self._sdk.OpenAIError as err:
            raise translate_sdk_error(err, self._sdk) from err
        if not resp.choices:
            raise ModelCallError("server", "response had no choices")
        choice, usage = resp.choices[0], resp.usage
        calls = [parse_openai_call(tc.model_dump()) for tc in (choice.message.tool_calls or [])]
        cached = 0
        if usage is not None and getattr(usage, "prompt_tokens_details", None) is not None:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        return AssistantStep(
            text=choice.message.content or "", tool_calls=_unique_ids(calls, conv),
            usage=Usage(input_tokens=usage.prompt_tokens if usage else 0,
                        output_tokens=usage.completion_tokens if usage else 0, cached_tokens=cached),
            model=resp.model or self.model, stop_reason=choice.finish_reason,
            latency_s=time.monotonic() - start)


class AnthropicAgentClient:
    provider = "anthropic"

    @property
    def takes_temperature(self) -> bool:
        from harness.models.anthropic_client import sdk_takes_temperature

        return sdk_takes_temperature()

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, timeout_s: float = 300.0) -> None:
        import anthropic

        self.model = model
        self._sdk = anthropic
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)

    def complete(self, request: AgentRequest) -> AssistantStep:
        from harness.models.anthropic_client import sampling_kwargs

        system, messages = request.conversation.to_anthropic()
        start = time.monotonic()
        try:
            resp = self._client.messages.create(
                model=self.model, max_tokens=request.max_tokens, system=system, messages=messages,
                tools=anthropic_tools(), tool_choice={"type": "auto"}, **sampling_kwargs(request.temperature))
        except self._sdk.AnthropicError as err:
            raise translate_sdk_error(err, self._sdk) from err
        blocks = [b.model_dump() for b in resp.content]
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        calls = [parse_anthropic_call(b) for b in blocks if b.get("type") == "tool_use"]
        u = resp.usage
        cache_read = getattr(u, "cache_read_input_tokens", 0) or 0
        cache_write = getattr(u, "cache_creation_input_tokens", 0) or 0
        return AssistantStep(
            text=text, tool_calls=_unique_ids(calls, request.conversation),
            usage=Usage(input_tokens=u.input_tokens + cache_read + cache_write, output_tokens=u.output_tokens,
                        cached_tokens=cache_read),
            model=resp.model, stop_reason=resp.stop_reason, latency_s=time.monotonic() - start)




# -- which models can run agent mode -------------------------------------------------

NO_TOOL_MODELS = ("o1-mini", "o1-preview", "gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")
"""OpenAI models whose API has no tool calling (completions-only or early reasoning models)."""

PROBE_TEXT = "kernelgrade tool-support check: reply with the word OK."
"""The one-token request sent to an OpenAI-compatible server before an agent run."""


def known_tool_problem(spec: ModelSpec) -> str | None:
    """A model known to have no tool calling, without asking anyone: one line naming it."""
    if spec.provider == "openai" and spec.model_id.startswith(NO_TOOL_MODELS):
        return (f"--model {spec.name}: {spec.model_id} has no tool calling, which --agent needs "
                "(use a model with tools, or leave out --agent)")
    return None


def probe_tools(spec: ModelSpec, *, base_url: str | None, api_key: str | None, timeout_s: float = 60.0) -> str | None:
    """Ask an OpenAI-compatible server once, before any trial, whether it takes `tools`
    (a one-token request). Servers without tool support refuse the field: vLLM without
    --enable-auto-tool-choice, llama-server without --jinja. Returns the problem, or None."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)
    try:
        client.chat.completions.create(model=spec.model_id, max_tokens=1, tools=openai_tools(), tool_choice="auto",
                                       messages=[{"role": "user", "content": PROBE_TEXT}])
    except openai.OpenAIError as err:
        failed = translate_sdk_error(err, openai)
        first = str(failed.args[0]).splitlines()[0][:300]
        if failed.kind == "bad_request":
            return f"--model {spec.name}: the server at {base_url} refused tool calling, which --agent needs ({first})"
        return f"--model {spec.name}: the server at {base_url} did not answer the tool-support check ({failed.kind}: {first})"
    return None


def make_agent_client(spec: ModelSpec, *, timeout_s: float = 300.0, attempts: int = 5) -> RetryingClient:
    """The agent-mode client for a resolved model (for `local`, the running server's spec),
    wrapped in the same bounded retries as one-shot calls."""
    import os

    inner: OpenAIAgentClient | AnthropicAgentClient
    if spec.provider == "anthropic":
        inner = AnthropicAgentClient(spec.model_id, api_key=os.environ[spec.key_env or "ANTHROPIC_API_KEY"],
                                     base_url=spec.base_url, timeout_s=timeout_s)
    else:
        key = os.environ.get(spec.key_env) if spec.key_env else None
        # The embedded llama.cpp server's chatml-function-calling template drops role=tool messages;
        # the embedded model's id names it also when `serve-local --tools` serves it at a --base-url.
        embedded = spec.provider == "local" or spec.model_id == MODEL_ID
        inner = OpenAIAgentClient(spec.model_id, provider=spec.provider, base_url=spec.base_url, api_key=key,
                                  timeout_s=timeout_s, tool_results_as_user=embedded)
    return RetryingClient(inner, attempts=attempts)  # type: ignore[arg-type]


__all__ = ["NO_TOOL_MODELS", "PROBE_TEXT", "AgentRequest", "AnthropicAgentClient", "OpenAIAgentClient",
           "known_tool_problem", "make_agent_client", "probe_tools"]
