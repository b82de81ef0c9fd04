"""Which level of checks this machine can run (DESIGN.md "Levels")."""

from __future__ import annotations

import functools
import shutil

from harness.common.errors import UserError
from harness.common.results import Device, Level

LEVELS = ("auto", "text", "compile", "run")


@functools.cache
def cuda_visible() -> bool:
    """A CUDA device usable by torch. Imports torch, so it is called only when needed."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def nvcc_found() -> bool:
    try:
        from harness.build.toolchain import find_nvcc

        return find_nvcc() is not None
    except Exception:  # a broken toolchain is "not found" for the purpose of auto
        return shutil.which("nvcc") is not None


def resolve_level(level: str, device: Device) -> Level:
    """auto -> run where a CUDA device is visible (or --device cpu), compile where nvcc
    is found, else text. --level run on cuda without a GPU is an error, not a downgrade."""
    if level not in LEVELS:
        raise UserError(f"--level {level}: choose one of {', '.join(LEVELS)}")
    if device not in ("cuda", "cpu"):
        raise UserError(f"--device {device}: choose cuda or cpu")
    if level == "run" and device == "cuda" and not cuda_visible():
        raise UserError("--level run needs a CUDA device and none is visible "
                        "(use --device cpu to run CPU kernels, or --level compile)")
    if level != "auto":
        return level  # type: ignore[return-value]
    if device == "cpu" or cuda_visible():
        return "run"
    return "compile" if nvcc_found() else "text"
