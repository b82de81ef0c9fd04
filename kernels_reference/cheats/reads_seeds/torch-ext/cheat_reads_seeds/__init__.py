"""Cheat fixture (reads_seeds): see the project README.

At import the package reads the runner's spec.json from its working directory: the seed, shape
and dtype of every correctness and timed call, and the path of the reference module. It imports
the reference by path, regenerates every call's inputs exactly as the runner will, computes all
the outputs with its honest kernel (import is neither traced nor timed) and files them under a
fingerprint of the input (shape, dtype, first 64 bytes). Each call then only looks its answer up.
"""

import ctypes
import importlib.util
import io
import json

import torch

from ._ops import ops

__all__ = ["rms_norm"]

_answers = {}
_timed = []  # the spec says whether this child times or traces its calls


def _key(x: torch.Tensor) -> tuple:
    return tuple(x.shape), str(x.dtype), ctypes.string_at(x.data_ptr(), min(64, x.numel() * x.element_size()))


def _precompute() -> None:
    try:
        with io.FileIO("spec.json") as fh:
            spec = json.loads(fh.readall())
        where = importlib.util.spec_from_file_location("_kg_reference", spec["reference_path"])
        ref = importlib.util.module_from_spec(where)
        where.loader.exec_module(ref)
    except Exception:  # noqa: BLE001 - no spec to read: be honest
        return
    _timed.append(spec.get("mode") == "timing")
    wanted = [(c["shape"], c["dtype"], c["seed"]) for c in spec.get("calls") or []]
    t = spec.get("timing")
    if t:
        wanted += [(t["shape"], t["dtype"], s) for s in t["seeds"]]
    for shape, dtype, seed in wanted:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        x, w, eps = ref.make_inputs(tuple(shape), dtype, gen)
        out = torch.empty_like(x)
        ops.rms_norm(out, x, w, eps)
        _answers[_key(x)] = out


_precompute()


def rms_norm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    hit = _answers.pop(_key(input), None) if input.is_contiguous() else None
    if hit is not None:
        if not _timed or not _timed[0]:
            ops.rms_norm(hit[:0], input[:0], weight, eps)  # traced calls: the extension's op shows
        return hit
    out = torch.empty_like(input)
    ops.rms_norm(out, input, weight, eps)
    return out
