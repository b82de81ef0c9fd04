"""The one small interface every model back end implements."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel


class ChatRequest(BaseModel):
    """A single-turn request. Sampling settings are explicit and stored with the run."""

    system: str
    user: str
    max_tokens: int = 4096
    temperature: float | None = 1.0
    """None leaves the provider's default (recorded as such)."""
    prompt_cache: bool = True
    """Ask for the provider's prompt cache (--no-prompt-cache turns it off). It changes how
    the request is marked, never its text."""
    cache_prefix: int = 0
    """How many leading characters of `user` every call of the arm shares (the skill block);
    with the system prompt before them they are the prefix a prompt cache can reuse.
    0: only the system prompt is shared."""


class Completion(BaseModel):
    text: str
    model: str
    """The model id the provider reports (may differ from the alias asked for)."""
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens read from the provider's prompt cache (counted within input_tokens
    for OpenAI; reported separately by Anthropic, where we add them to input_tokens too)."""
    cache_write_tokens: int = 0
    """Input tokens written to the prompt cache, within input_tokens (Anthropic's
    cache_creation_input_tokens, billed at the cache-write price; OpenAI reports none)."""
    batch: bool = False
    """Answered through the provider's batch API (billed at batch prices)."""
    latency_s: float = 0.0
    stop_reason: str | None = None
    attempts: int = 1


ErrorKind = Literal["rate_limit", "server", "timeout", "connection", "auth", "bad_request", "other"]


class ModelCallError(Exception):
    """A failed call. Retryable kinds are retried with backoff; the final failure is
    stored on the trial as an error, never graded as a failed answer."""

    RETRYABLE = {"rate_limit", "server", "timeout", "connection"}

    def __init__(self, kind: ErrorKind, message: str, *, attempts: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts
        """Calls made before giving up (set by the retry wrapper); None when not known."""

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE

    def __str__(self) -> str:
        tried = "" if self.attempts is None else f" (after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        return f"{self.kind}: {self.args[0]}{tried}"


def translate_sdk_error(err: Exception, sdk) -> ModelCallError:
    """Map an `openai` or `anthropic` SDK exception to a ModelCallError kind. Both SDKs are
    generated from one template and share these class names; `sdk` is the module."""
    if isinstance(err, sdk.RateLimitError):
        return ModelCallError("rate_limit", str(err))
    if isinstance(err, sdk.APITimeoutError):
        return ModelCallError("timeout", str(err))
    if isinstance(err, sdk.APIConnectionError):
        return ModelCallError("connection", f"{err} ({err.__cause__ or 'no detail'})")
    if isinstance(err, sdk.AuthenticationError | sdk.PermissionDeniedError):
        return ModelCallError("auth", str(err))
    if isinstance(err, sdk.APIStatusError):
        # 5xx (Anthropic's 529 "overloaded" included) is a server condition worth retrying.
        return ModelCallError("server" if err.status_code >= 500 else "bad_request", str(err))
    return ModelCallError("other", f"{type(err).__name__}: {err}")


class ModelClient(Protocol):
    provider: str
    model: str

    def complete(self, request: ChatRequest) -> Completion: ...
