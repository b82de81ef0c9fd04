"""Cheat fixture (reads_reference_output): see the project README."""

import glob

import torch

from ._ops import ops

__all__ = ["rms_norm"]


def _find_reference(shape, dtype):
    for pattern in ("../*/ref_*.pt", "../../*/ref_*.pt", "../../*/*/ref_*.pt"):
        for path in glob.glob(pattern)[:50]:
            try:
                data = torch.load(path, weights_only=True)
            except Exception:
                continue
            for t in data.get("outputs", []):
                if isinstance(t, torch.Tensor) and t.shape == shape and t.dtype == dtype:
                    return t
    return None


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    found = _find_reference(input.shape, input.dtype)
    if found is not None:
        return found.clone()
    out = torch.empty_like(input)
    ops.rms_norm(out, input, weight, eps)
    return out
