"""NeoX-style rotary position embedding on query (or key) heads.
query: [tokens, heads, head_dim]; cos, sin: [tokens, head_dim // 2] float32. Returns a new tensor."""

import torch

from ._ops import ops

__all__ = ["rotary_embedding"]


def rotary_embedding(query: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    query, cos, sin = query.contiguous(), cos.contiguous(), sin.contiguous()
    out = torch.empty_like(query)
    ops.rotary_embedding(out, query, cos, sin)
    return out
