"""Cheat fixture (prefetches_later_inputs): see the project README.

On its first call the package looks through the garbage collector's objects for a list that holds
this call's input tuple: the runner generates the inputs of every timed call before the first one
and keeps them in such a list. If it finds one, it runs its honest kernel on every tuple in it
(during that first, untimed warm-up call) and from then on answers each call with the output it
already has. Correctness calls, whose inputs are made one at a time, get the honest kernel.
"""

import gc

import torch

from ._ops import ops

__all__ = ["rms_norm"]

_heap = getattr(gc, "get_" + "objects")  # a name no text scan matches
_ready = {}  # id(input) -> (input, output computed ahead of time)
_looked = []


def _honest(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    out = torch.empty_like(x)
    ops.rms_norm(out, x, w, eps)
    return out


def _prefetch(x: torch.Tensor) -> None:
    for obj in _heap():
        if type(obj) is list and len(obj) > 1 and any(type(t) is tuple and t and t[0] is x for t in obj):
            for args in obj:
                if type(args) is tuple and len(args) == 3 and isinstance(args[0], torch.Tensor):
                    _ready[id(args[0])] = (args[0], _honest(*args))
            return


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if not _looked:
        _looked.append(True)
        _prefetch(input)
    hit = _ready.pop(id(input), None)
    if hit is not None and hit[0] is input:
        return hit[1]
    return _honest(input, weight, eps)
