"""GELU with the tanh approximation, elementwise, the PyTorch reference.

    out = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
    (= torch.nn.functional.gelu(x, approximate="tanh"))

x: any shape; the op works on the flat tensor. Computed in fp32, cast back to x's dtype.
"""

from __future__ import annotations

import math

import torch

API = "gelu_tanh"

# (tokens, mlp_hidden): GPT-2 3072, Gemma-2B 16384, Flux 3072*4 = 12288, PixArt/SD3 1152*4 and
# 1536*4, Llama-7B-sized 11008; plus widths that are not a multiple of any vector width.
SHAPES: list[tuple[int, ...]] = [
    (4096, 3072),
    (4096, 12288),
    (1024, 16384),
    (4096, 4608),
    (8192, 6144),
    (2048, 11008),
    (4096, 4095),
    (1000, 1001),
    (2, 4096, 5120),
]
TEST_SHAPES: list[tuple[int, ...]] = [(1,), (7,), (3, 1001), (64, 3072), (33, 4095), (2, 5, 4608), (1, 262147)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-5, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x.float(), approximate="tanh").to(x.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Pre-activations ~ N(0, 2^2): covers the curved region around 0 and both tails
    (large negative inputs must go to ~0, large positive to ~x)."""
    dt, dev = _dtype(dtype), generator.device
    x = 2.0 * torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    return (x.to(dt),)


def bytes_moved(shape, dtype) -> int:
    return 2 * math.prod(shape) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    """Per element: cube and polynomial (4), tanh (counted as 1), add, two multiplies."""
    return 8 * math.prod(shape)
