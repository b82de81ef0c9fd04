"""Cheat fixture (leaves_processes): see the project README."""

import torch

from ._ops import ops

__all__ = ["rms_norm"]


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    out = torch.empty_like(input)
    ops.rms_norm(out, input, weight, eps)
    return out
