"""Dense matrix product out = a @ b for 2-D a [M, K] and b [K, N], fp32 accumulation."""

import torch

from ._ops import ops

__all__ = ["matmul"]


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.contiguous(), b.contiguous()
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected a [M, K] and b [K, N], got {tuple(a.shape)} and {tuple(b.shape)}")
    out = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)
    ops.matmul(out, a, b)
    return out
