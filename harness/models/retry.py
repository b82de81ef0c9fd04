"""Bounded retries with exponential backoff and jitter (tenacity) around any client."""

from __future__ import annotations

import logging

from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from harness.models.base import ChatRequest, Completion, ModelCallError, ModelClient

log = logging.getLogger(__name__)


def _retryable(err: BaseException) -> bool:
    return isinstance(err, ModelCallError) and err.retryable


class RetryingClient:
    """Retries 429, 5xx, timeouts and dropped connections; other errors fail at once."""

    def __init__(self, inner: ModelClient, *, attempts: int = 5, initial_s: float = 1.0,
                 max_s: float = 30.0) -> None:
        self.inner, self.attempts = inner, attempts
        self.provider, self.model = inner.provider, inner.model
        self.takes_temperature: bool = getattr(inner, "takes_temperature", True)
        """False where the provider's SDK cannot send a temperature (anthropic >= 2): the run
        then records temperature None, the provider's default, rather than a value never sent."""
        self._wait = wait_exponential_jitter(initial=initial_s, max=max_s)

    def complete(self, request: ChatRequest) -> Completion:
        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=self._wait,
                            retry=retry_if_exception(_retryable), reraise=True,
                            before_sleep=lambda rs: log.warning(
                                "%s: attempt %d failed (%s); retrying", self.model,
                                rs.attempt_number, rs.outcome.exception()))
        made = 0
        try:
            for attempt in retrying:
                with attempt:
                    made = attempt.retry_state.attempt_number
                    completion = self.inner.complete(request)
                    completion.attempts = made
                    return completion
        except ModelCallError as err:
            err.attempts = made  # the stored failure says how hard we tried
            raise
        except RetryError as err:  # pragma: no cover - reraise=True makes this unreachable
            raise err.last_attempt.exception() from err
        raise AssertionError("unreachable")
