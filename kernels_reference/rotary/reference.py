"""NeoX-style rotary position embedding (Llama, Qwen, Flux, GPT-NeoX), the PyTorch reference.

    x1, x2 = q[..., :half], q[..., half:]          # half = head_dim // 2
    out = cat(x1 * cos - x2 * sin, x2 * cos + x1 * sin)

query: [tokens, heads, head_dim] (head_dim even, the whole head is rotated); cos, sin:
[tokens, head_dim // 2] float32, one row per token (already gathered by position, as vLLM
does), broadcast over heads. Rotation in fp32, result cast back to query's dtype.
"GPT-J style" (interleaved pairs 2i, 2i+1) is a different op and does not match this one.
"""

from __future__ import annotations

import math

import torch

API = "rotary_embedding"

# (tokens, heads, head_dim): Llama-3-8B prefill (32 x 128), Llama-3-8B KV heads (8 x 128),
# Flux joint attention (4096 + 512 tokens, 24 x 128), GPT-NeoX-20B (64 x 96), Phi-2-like 80,
# plus half-dims that are not a multiple of any vector width (head_dim 18 -> half 9, 6 -> 3).
SHAPES: list[tuple[int, ...]] = [
    (4096, 32, 128),
    (4096, 8, 128),
    (4608, 24, 128),
    (2048, 64, 96),
    (2048, 32, 80),
    (1000, 7, 18),
    (8192, 4, 64),
]
TEST_SHAPES: list[tuple[int, ...]] = [(1, 1, 2), (7, 3, 18), (33, 8, 64), (64, 32, 128), (5, 24, 128), (17, 5, 80), (9, 3, 6)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-5, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}
ROPE_THETA = 10000.0


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(query: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    q = query.float()
    half = q.shape[-1] // 2
    x1, x2 = q[..., :half], q[..., half:]
    c, s = cos.float()[:, None, :], sin.float()[:, None, :]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).to(query.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """query ~ N(0, 1); positions start at a random offset below 4096 (a decode step deep in
    the context), angles = position * theta^(-2i/head_dim), computed in float64."""
    if len(shape) != 3 or shape[-1] % 2:
        raise ValueError(f"rotary shape {shape}: expected (tokens, heads, even head_dim)")
    dt, dev = _dtype(dtype), generator.device
    tokens, _, head_dim = shape
    q = torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
    start = int(torch.randint(0, 4096, (1,), generator=generator, device=dev).item())
    pos = torch.arange(start, start + tokens, device=dev, dtype=torch.float64)
    inv_freq = ROPE_THETA ** (-torch.arange(0, head_dim, 2, device=dev, dtype=torch.float64) / head_dim)
    angles = pos[:, None] * inv_freq[None, :]
    return q.to(dt), torch.cos(angles).float(), torch.sin(angles).float()


def bytes_moved(shape, dtype) -> int:
    """Read query, write out (query dtype); read the cos/sin tables once (float32)."""
    n = math.prod(shape)
    tokens, _, head_dim = shape
    return 2 * n * torch.empty((), dtype=_dtype(dtype)).element_size() + 2 * tokens * (head_dim // 2) * 4


def flops(shape, dtype) -> int:
    """Per element: two multiplies and an add."""
    return 3 * math.prod(shape)
