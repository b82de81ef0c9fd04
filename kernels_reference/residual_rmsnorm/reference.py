"""Fused residual add + RMSNorm (pre-norm LLM / DiT blocks), the PyTorch reference.

    residual_out = (input + residual)                         rounded to the dtype
    out          = residual_out * rsqrt(mean(residual_out^2) + eps) * weight

input, residual: [..., hidden]; weight: [hidden]; eps a float. Returns (out, residual_out),
both in the input dtype; the inputs are not modified. The norm is taken of the ROUNDED sum:
this is what the unfused model computes (`h = x + residual` in bf16, then `norm(h)`).
"""

from __future__ import annotations

import math

import torch

API = "residual_rms_norm"

# (tokens, hidden): Llama-3-8B 4096, Llama-70B 8192, Qwen2-7B 3584, Mistral-style 5120,
# Flux 3072; plus widths that are not a multiple of any vector width (4095, 1000, 17).
SHAPES: list[tuple[int, ...]] = [
    (4096, 4096),
    (2048, 8192),
    (1024, 3584),
    (2, 1024, 5120),
    (4096, 3072),
    (4096, 4095),
    (1000, 1000),
    (257, 17),
]
TEST_SHAPES: list[tuple[int, ...]] = [(1, 8), (7, 1000), (33, 4095), (16, 4096), (2, 3, 1536), (3, 17)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(
    input: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    h = (input.float() + residual.float()).to(input.dtype)
    hf = h.float()
    out = hf * torch.rsqrt(hf.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.float()
    return out.to(input.dtype), h


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Residual stream ~ N(0, 4^2) with outlier channels (large-magnitude residual streams are
    typical deep in LLMs), the block's update ~ N(0, 1), weight ~ 1 + N(0, 0.1)."""
    dt, dev = _dtype(dtype), generator.device
    hidden = shape[-1]
    residual = 4.0 * torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    outliers = torch.randint(0, hidden, (max(1, hidden // 512),), generator=generator, device=dev)
    residual[..., outliers] *= 8.0
    x = torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    weight = 1.0 + 0.1 * torch.randn(hidden, generator=generator, device=dev, dtype=torch.float32)
    return x.to(dt), residual.to(dt), weight.to(dt), 1e-6


def bytes_moved(shape, dtype) -> int:
    """Read input, residual and weight once; write out and residual_out once."""
    n, hidden = math.prod(shape), shape[-1]
    return (4 * n + hidden) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    """Per element: add (1), square+accumulate (2), scale by rstd and weight (2)."""
    return 5 * math.prod(shape)
