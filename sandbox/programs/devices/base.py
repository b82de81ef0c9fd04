"""What a device strategy provides (the Protocol) and the evidence it returns."""

from __future__ import annotations

from typing import NamedTuple, Protocol


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

    def flush(self, i: int) -> None:
        """Evict the caches from inside the child. Only where the parent cannot (see
        harness/execute/flush.py): the parent's own flush is out of the candidate's reach."""
        ...

    def to_device(self, t):
        """A copy of a host input on the device (CPU: the tensor itself)."""
        ...

    def to_host(self, t):
        """The output as host memory the parent can read (CPU: the tensor itself; CUDA: a copy
        taken after a device-wide synchronise)."""
        ...

    def profiler_activities(self) -> list: ...

    def evidence(self, events: list[dict], ext_namespace: str) -> Evidence:
        """Did the candidate's own compiled code run during a traced call?"""
        ...


__all__ = ["DeviceStrategy", "Evidence", "Timer"]
