"""Cheat fixture (defers_work): see the project README."""

import torch

from ._ops import ops

__all__ = ["rms_norm"]


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return ops.rms_norm(input, weight, eps)
