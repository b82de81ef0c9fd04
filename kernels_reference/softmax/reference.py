"""Row softmax over the last dimension, the PyTorch reference.

    out[..., i] = exp(x[..., i] - max(x)) / sum_j exp(x[..., j] - max(x))

x: [..., cols] (any leading dims). Computed in fp32 and cast back to x's dtype.
Inputs are finite (no -inf masking), so every row has a well-defined result.
"""

from __future__ import annotations

import math

import torch

API = "softmax"

# (rows, cols): attention probabilities (batch*heads*queries, keys) at 1K/4K context,
# vocab-sized rows (Llama-2 32000, GPT-2 50257, Llama-3 128256), CLIP's 77-token rows,
# and widths that are not a multiple of any vector width (4095, 1000, 50257, 77).
SHAPES: list[tuple[int, ...]] = [
    (32 * 128, 1024),
    (4096, 4096),
    (1024, 32000),
    (512, 50257),
    (128, 128256),
    (8192, 77),
    (4096, 4095),
    (1000, 1000),
    (2, 16, 256, 256),
]
TEST_SHAPES: list[tuple[int, ...]] = [(1, 1), (7, 77), (64, 1000), (16, 1024), (16, 4096), (33, 4095), (4, 50257)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-5, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.float(), dim=-1).to(x.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Logits ~ N(0, 5^2) plus a per-row offset in [-20, 20]: peaked rows whose largest
    probabilities are far above the tolerance (an all-zero output cannot pass), and an
    offset that a kernel skipping the max subtraction would overflow on in fp16."""
    dt, dev = _dtype(dtype), generator.device
    x = 5.0 * torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    offset = 40.0 * torch.rand((*shape[:-1], 1), generator=generator, device=dev, dtype=torch.float32) - 20.0
    return ((x + offset).to(dt),)


def bytes_moved(shape, dtype) -> int:
    """Read x once, write out once (the ideal; the kernel's second read hits cache)."""
    return 2 * math.prod(shape) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    """Per element: max, subtract, exp, sum, scale."""
    return 5 * math.prod(shape)
