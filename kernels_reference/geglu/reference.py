"""GEGLU (gated GELU, tanh approximation), the PyTorch reference.

    a, b = x.chunk(2, dim=-1)          # x: [..., 2*d]
    out = gelu_tanh(a) * b             # out: [..., d]

The GELU is applied to the FIRST half (vLLM's `gelu_tanh_and_mul` order; Gemma's MLP).
Note diffusers' GEGLU module applies it to the second half: a kernel for that module
swaps the halves. Computed in fp32 and cast back to x's dtype.
"""

from __future__ import annotations

import math

import torch

API = "geglu"

# (tokens, 2*d): SD1.x/SDXL transformer FF (d = 4*320..4*1280 -> 2560..10240), Gemma-2B/7B MLP
# (d = 16384, 24576), PixArt/SD3 sized d; plus d not a multiple of any vector width (4095, 1001).
SHAPES: list[tuple[int, ...]] = [
    (4096, 2 * 5120),
    (1024, 2 * 10240),
    (4096, 2 * 2560),
    (2048, 2 * 16384),
    (512, 2 * 24576),
    (4096, 2 * 4095),
    (1000, 2 * 1001),
    (2, 4096, 2 * 5120),
]
TEST_SHAPES: list[tuple[int, ...]] = [(1, 2), (7, 2 * 7), (3, 2 * 1001), (64, 2 * 2560), (33, 2 * 4095), (2, 5, 2 * 1280)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-5, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(x: torch.Tensor) -> torch.Tensor:
    a, b = x.float().chunk(2, dim=-1)
    return (torch.nn.functional.gelu(a, approximate="tanh") * b).to(x.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Projection outputs ~ N(0, 1.5^2) in both halves; shape is the INPUT shape [..., 2*d]."""
    if shape[-1] % 2:
        raise ValueError(f"geglu shape {shape}: last dimension must be even (it holds both halves)")
    dt, dev = _dtype(dtype), generator.device
    x = 1.5 * torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    return (x.to(dt),)


def bytes_moved(shape, dtype) -> int:
    """Read both halves (numel), write half as many."""
    n = math.prod(shape)
    return (n + n // 2) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    """Per output element: the GELU (8) and the gating multiply."""
    return 9 * (math.prod(shape) // 2)
