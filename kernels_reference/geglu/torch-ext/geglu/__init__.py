"""GEGLU: gelu_tanh(first half of the last dim) * second half (vLLM's gelu_tanh_and_mul order)."""

import torch

from ._ops import ops

__all__ = ["geglu"]


def geglu(input: torch.Tensor) -> torch.Tensor:
    input = input.contiguous()
    if input.shape[-1] % 2:
        raise ValueError(f"geglu: last dimension must be even, got {input.shape[-1]}")
    out = torch.empty((*input.shape[:-1], input.shape[-1] // 2), dtype=input.dtype, device=input.device)
    ops.geglu(out, input)
    return out
