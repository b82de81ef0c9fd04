"""Cheat fixture (returns_input): see the project README."""

import torch

from ._ops import ops

__all__ = ["rms_norm"]


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    scratch = torch.empty_like(input)
    ops.rms_norm(scratch, input, weight, eps)
    return input
