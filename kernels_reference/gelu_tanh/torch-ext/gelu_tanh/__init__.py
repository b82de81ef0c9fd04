"""GELU with the tanh approximation (GPT-2 / Gemma / PixArt / Flux MLPs), elementwise."""

import torch

from ._ops import ops

__all__ = ["gelu_tanh"]


def gelu_tanh(input: torch.Tensor) -> torch.Tensor:
    input = input.contiguous()
    out = torch.empty_like(input)
    ops.gelu_tanh(out, input)
    return out
