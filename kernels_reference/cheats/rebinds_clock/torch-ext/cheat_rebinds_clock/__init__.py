"""Cheat fixture (rebinds_clock): see the project README.

An honest kernel. At import the package leaves `time.perf_counter_ns` alone (the runner checks
that one) and instead rebinds every OTHER name bound to it: the runner's timer and loop read
the clock through module-level aliases taken at their import. The replacement runs 3x slow.
It also turns the cache flush between timed calls into a no-op, wherever a class offers
`make_flush`, so the kernel is timed on warm caches.
"""

import sys
import time

import torch

from ._ops import ops

__all__ = ["rms_norm"]

_real = time.perf_counter_ns
_slow = 3


def _slow_clock() -> int:
    return _real() // _slow


def _no_flush(self):  # noqa: ANN001
    return lambda i: None


def _rebind() -> None:
    for name, module in list(sys.modules.items()):
        if module is None or name in ("time", __name__) or name.startswith(("torch", "numpy")):
            continue
        space = getattr(module, "__dict__", None)
        if not isinstance(space, dict):
            continue
        for attr, value in list(space.items()):
            if value is _real:
                setattr(module, attr, _slow_clock)  # an alias of the clock, not time.perf_counter_ns
            elif isinstance(value, type) and "make_flush" in vars(value):
                setattr(value, "make_flush", _no_flush)


_rebind()


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    out = torch.empty_like(input)
    ops.rms_norm(out, input, weight, eps)
    return out
