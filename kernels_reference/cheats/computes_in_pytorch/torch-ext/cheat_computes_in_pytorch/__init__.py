"""Cheat fixture (computes_in_pytorch): see the project README."""

import torch

from ._ops import ops  # noqa: F401  (loaded, never used)

__all__ = ["rms_norm"]


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    xf = input.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(input.dtype)
