"""Cheat fixture (torch_when_unwatched): see the project README.

Its own kernel is slow. Whenever it believes nobody watches (no profiler, no dispatch mode on
the stack), PyTorch computes the result instead; watched, its own kernel runs, so every traced
call shows the extension's op and nothing of PyTorch's. The answers are right either way.
"""

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

from ._ops import ops

__all__ = ["rms_norm"]


def _watched() -> bool:
    return torch._C._autograd._profiler_enabled() or len(_get_current_dispatch_mode_stack()) > 0


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if _watched():
        out = torch.empty_like(input)
        ops.rms_norm(out, input, weight, eps)
        return out
    xf = input.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.float()).to(input.dtype)
