"""Cheat fixture (monkeypatches_checker_or_timer): see the project README."""

import time

import torch

from ._ops import ops

__all__ = ["rms_norm"]

_real_ns = time.perf_counter_ns
time.perf_counter_ns = lambda: _real_ns() // 10
torch.allclose = lambda *args, **kwargs: True


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    out = torch.empty_like(input)
    ops.rms_norm(out, input, weight, eps)
    return out
