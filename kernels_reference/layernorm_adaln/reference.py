"""LayerNorm with AdaLN-style modulation (DiT / PixArt / SD3 / Flux blocks), the PyTorch reference.

    out[b, s, :] = LayerNorm(x[b, s, :]) * (1 + scale[b, :]) + shift[b, :]

x: [B, S, D]; scale, shift: [B, D], one modulation vector per sample (from the timestep /
conditioning embedding), broadcast over the S tokens. LayerNorm has no affine parameters
(elementwise_affine=False, as in these models). eps is a float (1e-6 here). Computed in fp32
and cast back to x's dtype.
"""

from __future__ import annotations

import math

import torch

API = "layernorm_adaln"

# (B, S, D): DiT-XL/2 at 256px (256 tokens, D 1152), PixArt-alpha 1024px (4096 tokens, 1152),
# SD3-medium (1536), Flux (3072, 4096 image tokens), Hunyuan-DiT-like 1408; plus D not a
# multiple of any vector width (4095, 1000).
SHAPES: list[tuple[int, ...]] = [
    (8, 256, 1152),
    (2, 4096, 1152),
    (2, 4096, 1536),
    (1, 4096, 3072),
    (4, 1024, 1408),
    (2, 1000, 4095),
    (16, 77, 1000),
]
TEST_SHAPES: list[tuple[int, ...]] = [(1, 1, 8), (2, 7, 1000), (2, 33, 4095), (3, 16, 1152), (1, 5, 3072), (2, 3, 17)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (2e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    normed = torch.nn.functional.layer_norm(xf, (x.shape[-1],), eps=eps)
    return (normed * (1.0 + scale.float()[:, None, :]) + shift.float()[:, None, :]).to(x.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Tokens ~ N(mu_d, 1) with a per-channel mean mu_d ~ N(0, 2^2) (so a kernel that skips
    centring is visibly wrong); scale, shift ~ N(0, 0.5^2) per sample."""
    if len(shape) != 3:
        raise ValueError(f"layernorm_adaln shape {shape}: expected (B, S, D)")
    dt, dev = _dtype(dtype), generator.device
    b, _, d = shape
    mu = 2.0 * torch.randn(d, generator=generator, device=dev, dtype=torch.float32)
    x = torch.randn(shape, generator=generator, device=dev, dtype=torch.float32) + mu
    scale = 0.5 * torch.randn((b, d), generator=generator, device=dev, dtype=torch.float32)
    shift = 0.5 * torch.randn((b, d), generator=generator, device=dev, dtype=torch.float32)
    return x.to(dt), scale.to(dt), shift.to(dt), 1e-6


def bytes_moved(shape, dtype) -> int:
    """Read x once and scale/shift once per sample, write out once."""
    b, s, d = shape
    return (2 * b * s * d + 2 * b * d) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    """Per element: mean (1), centred square (3), normalise (2), modulate (2)."""
    return 8 * math.prod(shape)
