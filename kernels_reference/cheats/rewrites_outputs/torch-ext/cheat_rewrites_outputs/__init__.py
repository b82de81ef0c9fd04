"""Cheat fixture (rewrites_outputs): see the project README.

Every call returns at once with an output the kernel never wrote (its own op is dispatched on an
empty slice, so the trace shows the extension's op and nothing else). The runner saves each
call's output, and the call's inputs, to files in the child's working directory and the parent
reads them only after the child has exited. This package computes each output later, with its
honest kernel, and writes it into both the output's memory and the saved file: during the next
call when that call's file already exists (correctness calls), else at exit (timed calls).
"""

import atexit
import io
import os

import torch

from ._ops import ops

__all__ = ["rms_norm"]

_load = getattr(torch, "lo" + "ad")  # names no text scan matches
_exists = getattr(os.path, "is" + "file")
_calls = []  # (input, weight, eps, output) of every call, in order; the runner keeps them alive too
_done = set()


def _finish(i: int) -> torch.Tensor:
    x, w, eps, out = _calls[i]
    if i not in _done:
        ops.rms_norm(out, x, w, eps)  # the real work, long after the call returned
        _done.add(i)
    return out


def _rewrite_call_file(i: int) -> None:
    name = f"call_{i}.pt"
    data = _load(name, weights_only=True)
    data["outputs"] = [_finish(i).clone()]
    torch.save(data, name)


def _warmup(n_saved: int) -> int:
    """Warm-up calls before the timed ones: the saved keys are 0..n-1 when every output is saved."""
    if n_saved and len(_calls) >= n_saved:
        return len(_calls) - n_saved
    import json

    with io.FileIO("spec.json") as fh:
        return int(json.loads(fh.readall())["timing"]["warmup"])


@atexit.register
def _rewrite_at_exit() -> None:
    if _exists("timed_outputs.pt"):
        data = _load("timed_outputs.pt", weights_only=True)
        keys = sorted(int(k) for k in data)
        first = _warmup(len(keys) if keys == list(range(len(keys))) else 0)
        for j in keys:
            data[str(j)] = [_finish(first + j).clone()]
        torch.save(data, "timed_outputs.pt")
    for i in range(len(_calls)):
        if i not in _done and _exists(f"call_{i}.pt"):
            _rewrite_call_file(i)


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    # Correctness calls: the previous call's file exists by now, so finish that call (untimed).
    prev = len(_calls) - 1
    if prev >= 0 and prev not in _done and _exists(f"call_{prev}.pt"):
        _rewrite_call_file(prev)
    out = torch.empty_like(input)
    ops.rms_norm(out[:0], input[:0], weight, eps)  # the extension's op runs, on nothing
    _calls.append((input, weight, eps, out))
    return out
