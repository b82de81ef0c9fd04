"""Which GPUs the local executor may use, and `--gpus 0,1` (pure parts first).

A GPU is named as CUDA_VISIBLE_DEVICES names it: an index as nvidia-smi numbers it, or a
UUID (GPU-...). A lane pinned to one GPU sets CUDA_VISIBLE_DEVICES to that one name, so
inside it (and inside the sandboxed child, which inherits the variable through the sandbox's
environment allowlist) the GPU is device 0.
"""

from __future__ import annotations

import os

from harness.common.errors import UserError


def parse_gpu_list(text: str | None) -> list[str] | None:
    """`--gpus 0,1` -> ["0", "1"]; None or "" -> None (all visible). Pure."""
    if text is None or not text.strip():
        return None
    names = [t.strip() for t in text.split(",")]
    if any(not n for n in names):
        raise UserError(f"--gpus {text}: empty name in the list (use e.g. --gpus 0,1)")
    if len(set(names)) != len(names):
        raise UserError(f"--gpus {text}: a GPU is named twice")
    return names


def visible_from_env(value: str | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as a list; None when unset. Pure. An empty value hides every GPU;
    CUDA stops at the first invalid entry (-1 and friends), and so does this."""
    if value is None:
        return None
    out: list[str] = []
    for token in value.split(","):
        token = token.strip()
        if not token or token.startswith("-"):
            break
        out.append(token)
    return out


def select_gpus(visible: list[str], requested: list[str] | None) -> list[str]:
    """The GPUs to use: `requested` (each must be visible) or all visible ones. Pure."""
    if requested is None:
        return list(visible)
    unknown = [g for g in requested if g not in visible]
    if unknown:
        seen = ", ".join(visible) if visible else "none"
        raise UserError(f"--gpus: {', '.join(unknown)} not visible here (visible: {seen})")
    return list(requested)


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else every GPU
    nvidia-smi lists, by index."""
    from_env = visible_from_env(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if from_env is not None:
        return from_env
    from harness.executors.node import query_gpus

    return [g.index for g in query_gpus()]


__all__ = ["parse_gpu_list", "select_gpus", "visible_from_env", "visible_gpus"]
