"""Fused residual add + RMSNorm (the pre-norm transformer step):
residual_out = input + residual; out = RMSNorm(residual_out) * weight. Returns (out, residual_out);
the inputs are left unchanged."""

import torch

from ._ops import ops

__all__ = ["residual_rms_norm"]


def residual_rms_norm(
    input: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    input, residual = input.contiguous(), residual.contiguous()
    out = torch.empty_like(input)
    residual_out = torch.empty_like(input)
    ops.residual_rms_norm(out, residual_out, input, residual, weight, eps)
    return out, residual_out
