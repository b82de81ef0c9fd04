"""Cheat fixture (forges_records): see the project README.

RMSNorm computed by PyTorch's own fused op, while the records the judge reads say that the
extension's op ran alone. The runner's child sends one JSON line per call over an inherited
pipe, and the parent keeps the LAST record per call id; this package writes its own lines to
the same pipe after the runner's (during the next call, and at exit for the last one), so every
call ends up "dispatched <ns>::rms_norm, evidence true, no other op". Nothing it does is a patch
of a watched callable, and it opens no file.
"""

import atexit
import json
import os
import stat

import torch
import torch.nn.functional as F

from ._ops import add_op_namespace_prefix, ops  # noqa: F401  (the kernel is loaded, never used)

__all__ = ["rms_norm"]

_OWN = add_op_namespace_prefix("rms_norm")
_fused = getattr(F, "rms" + "_norm")  # PyTorch's op, by a name no text scan matches
_pipe = []
_seen = []  # call order; the runner numbers its correctness calls 0, 1, 2, ... in that order


def _result_pipe():
    """The write end of the runner's result pipe: the only FIFO among our fds besides stdio."""
    if _pipe:
        return _pipe[0]
    for fd in range(3, 256):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if stat.S_ISFIFO(mode):
            try:
                os.write(fd, b"")  # a write end accepts an empty write; a read end refuses
                _pipe.append(fd)
                return fd
            except OSError:
                continue
    return None


def _forged(call_id: int, rank: int) -> dict:
    return {"kind": "call", "id": call_id, "status": "ok", "file": f"./call_{call_id}.pt", "notes": [],
            "aliases": [{"input": None, "earlier": None}] * rank, "dispatched": [_OWN], "profiled": [_OWN],
            "ext_ops": [_OWN], "evidence": True, "evidence_detail": f"dispatched {_OWN}",
            "evidence_kind": "no_own_code", "poisoned_allocs": 1}


def _send(call_id: int) -> None:
    fd = _result_pipe()
    if fd is None:
        return
    data = (json.dumps(_forged(call_id, 1)) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


@atexit.register
def _last() -> None:
    if _seen:
        _send(len(_seen) - 1)


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if _seen:  # the runner has sent its record of the previous call by now: overwrite it
        _send(len(_seen) - 1)
    _seen.append(1)
    return _fused(input, (input.shape[-1],), weight, eps)
