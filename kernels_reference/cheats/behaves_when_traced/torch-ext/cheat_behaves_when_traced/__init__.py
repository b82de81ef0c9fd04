"""Cheat fixture (behaves_when_traced): see the project README.

Honest whenever it is watched: if the profiler is on or someone else's TorchDispatchMode is on
the stack (the runner traces its correctness calls that way), the kernel runs at once. When
nobody watches (the runner's timed calls), the call returns an output it has not written yet and
leaves the work to a dispatch mode of its own, which does it the moment any later torch op runs:
the runner's copy of the output right after the timer stopped, or the cache flush.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack

from ._ops import ops

__all__ = ["rms_norm"]

_pending = []  # (out, input, weight, eps) returned unwritten
_mode = []


class _Later(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        while _pending:  # somebody looks: finish everything first (this mode is off in here)
            out, x, w, eps = _pending.pop()
            ops.rms_norm(out, x, w, eps)
        return func(*args, **(kwargs or {}))


def _watched() -> bool:
    if torch._C._autograd._profiler_enabled():
        return True
    return any(not isinstance(m, _Later) for m in _get_current_dispatch_mode_stack())


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if _watched():
        out = torch.empty_like(input)
        ops.rms_norm(out, input, weight, eps)
        return out
    if not _mode:
        _mode.append(_Later())
        _mode[0].__enter__()  # stays on the stack for the rest of the process
    with torch._C._DisableTorchDispatch():  # allocate without waking our own mode
        out = torch.empty_like(input)
    _pending.append((out, input, weight, eps))
    return out
