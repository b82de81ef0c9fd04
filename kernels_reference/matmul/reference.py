"""Dense matrix product, the PyTorch reference (the one compute-bound op here).

    out[M, N] = a[M, K] @ b[K, N]

`shape` is (M, N, K) (not the shape of an input). a, b and out share the dtype; products
are accumulated in fp32 and cast once at the end. The CUDA kernel is a tiled SIMT kernel
(no tensor cores): a correctness yardstick for a compute-bound op, far from cuBLAS speed.
"""

from __future__ import annotations

import math

import torch

API = "matmul"

# (M, N, K): Llama-3-8B prefill projections (4096 tokens: qkv 6144x4096, MLP up 14336x4096,
# down 4096x14336), Flux attention/MLP at 3072, a decode-sized M, and sizes that are not a
# multiple of any tile or vector width (1000, 4095, 77).
SHAPES: list[tuple[int, int, int]] = [
    (4096, 6144, 4096),
    (4096, 14336, 4096),
    (4096, 4096, 14336),
    (4096, 3072, 3072),
    (16, 4096, 4096),
    (1000, 1000, 1000),
    (4095, 4095, 77),
]
TEST_SHAPES: list[tuple[int, int, int]] = [(1, 1, 1), (7, 13, 33), (64, 64, 64), (100, 200, 300), (128, 255, 1000),
                                           (33, 77, 4095)]
DTYPES = ["float32", "bfloat16", "float16"]
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() @ b.float()).to(a.dtype)


def make_inputs(shape, dtype, generator: torch.Generator) -> tuple:
    """Activations a ~ N(0, 1); weights b ~ N(0, 1/K) (the usual init scaling), so out ~ N(0, 1)
    whatever K is and the fixed tolerances mean the same thing on every shape."""
    if len(shape) != 3:
        raise ValueError(f"matmul shape {shape}: expected (M, N, K)")
    dt, dev = _dtype(dtype), generator.device
    m, n, k = shape
    a = torch.randn((m, k), generator=generator, device=dev, dtype=torch.float32)
    b = torch.randn((k, n), generator=generator, device=dev, dtype=torch.float32) / math.sqrt(k)
    return a.to(dt), b.to(dt)


def bytes_moved(shape, dtype) -> int:
    """Read a and b once, write out once (the minimum; tiles are re-read from L2)."""
    m, n, k = shape
    return (m * k + k * n + m * n) * torch.empty((), dtype=_dtype(dtype)).element_size()


def flops(shape, dtype) -> int:
    m, n, k = shape
    return 2 * m * n * k
