"""What a device strategy provides (the Protocol) and the evidence it returns."""

from __future__ import annotations

from typing import Callable, NamedTuple, Protocol


class Evidence(NamedTuple):
    """Whether the candidate's own compiled code did the traced call's work."""

    ok: bool
    detail: str
    kind: str = "no_own_code"
    """The judge's problem kind when not ok (harness/execute/judge.py KIND_ORDER)."""


class Timer(Protocol):
    def start(self) -> None: ...

    def stop(self) -> int:
        """Elapsed nanoseconds since start(), after the device finished the work."""
        ...


class DeviceStrategy(Protocol):
    name: str
    """"cpu" or "cuda": also the torch device string."""
    default_timed_iters: int
    default_warmup: int
    default_rounds: int

    def available(self) -> bool: ...

    def sync(self) -> None: ...

    def timer(self) -> Timer: ...

    def flush_bytes(self) -> int:
        """Size of the buffer written between timed calls (>= 2x the last cache level)."""
        ...

    def make_flush(self) -> Callable[[int], None]:
        """A function that evicts the caches; called with the call index."""
        ...

    def profiler_activities(self) -> list: ...

    def evidence(self, events: list[dict], ext_namespace: str) -> Evidence:
        """Did the candidate's own compiled code run during a traced call?"""
        ...


__all__ = ["DeviceStrategy", "Evidence", "Timer"]
