"""RMSNorm over the last dimension (Llama / T5 / Flux-style), the PyTorch reference.

    out = x * rsqrt(mean(x^2, dim=-1) + eps) * weight

x: [..., hidden] (any leading dims), weight: [hidden], same dtype as x; eps is a float.
Computed in fp32 and cast back to x's dtype once at the end (the kernels do the same),
so bf16/fp16 results differ from the reference only by the final rounding.
"""

from __future__ import annotations

import math

import torch

API = "rms_norm"

# (tokens, hidden) from real models: Llama-2/3-8B 4096, Llama-70B 8192, Flux/SD3-large 3072,
# SD3-medium 1536, Qwen2-7B 3584, Mistral-style 5120; plus shapes that are not a multiple of any
# vector width (4095, 1000, 17) and a 3-D (batch, seq, hidden) one.
SHAPES: list[tuple[int, ...]] = [
    (4096, 4096),
    (2048, 8192),
    (4096, 3072),
    (8192, 1536),
    (1024, 3584),
    (2, 1024, 5120),
    (4096, 4095),
    (1000, 1000),
    (257, 17),
    (1, 16384),
]
# Small shapes (<= 1M elements) for CI; they keep the awkward widths.
TEST_SHAPES: list[tuple[int, ...]] = [(1, 8), (7, 1000), (33, 4095), (16, 4096), (2, 3, 1536), (3, 16385)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    rstd = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (xf * rstd * weight.float()).to(x.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Activations ~ N(0, 1) with a few large outlier channels (as in real LLM residual
    streams), weight ~ 1 + N(0, 0.1). Tensors are created on the generator's device."""
    dt, dev = _dtype(dtype), generator.device
    hidden = shape[-1]
    x = torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    outliers = torch.randint(0, hidden, (max(1, hidden // 512),), generator=generator, device=dev)
    x[..., outliers] *= 8.0
    weight = 1.0 + 0.1 * torch.randn(hidden, generator=generator, device=dev, dtype=torch.float32)
    return x.to(dt), weight.to(dt), 1e-6


def bytes_moved(shape, dtype) -> int:
    """Read x and weight once, write out once."""
    n, hidden = math.prod(shape), shape[-1]
    return (2 * n + hidden) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    """Per element: square+accumulate (2), scale by rstd and weight (2)."""
    return 4 * math.prod(shape)
