"""LayerNorm (no affine) modulated AdaLN-style, as in DiT / PixArt / Flux blocks:
out = LN(x) * (1 + scale[b]) + shift[b], x: [B, S, D], scale/shift: [B, D] (one per sample)."""

import torch

from ._ops import ops

__all__ = ["layernorm_adaln"]


def layernorm_adaln(input: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    input, scale, shift = input.contiguous(), scale.contiguous(), shift.contiguous()
    out = torch.empty_like(input)
    ops.layernorm_adaln(out, input, scale, shift, eps)
    return out
