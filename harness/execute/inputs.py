"""The inputs of every call, made by the parent, and how they reach a child.

Each call's inputs come in three layers (docs/validation.md, "Threat model"):
  x0  what the call's seed generates (`make_inputs` of the reference, on the CPU),
  x1  x0 with one secret element changed in every row of every floating input (change A),
  x2  x1 with another secret element changed in every row (change B): the real input.
The changes copy another element of the same tensor, so every layer looks like the
reference's own inputs. A child never sees a seed of x2 (there is none) and gets x2 only
when its call is due, written by the parent into the call's slot of a shared memory ring.
Until then the slot holds x1, a decoy: a look ahead at later inputs sees inputs wrong in
every row. And the candidate's workspace holds a decoy spec (spec.json, as the runner used to
write it) naming the x0 seeds: an answer made from the seeds is wrong in every row too.
The judge compares an output with the reference on all three layers
(harness/execute/judge.py): right on x0 means it followed the seed, right on x1 that it was
ready before its inputs were given.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from sandbox.programs.child_common import make_inputs, seed_for
from sandbox.programs.protocol import align, span_elements, tensor_spec

LAYERS = ("x0", "x1", "x2")
#: Up to this many bytes every call gets a slot of its own (and a decoy staged in it).
RING_BUDGET = 1024 * 1024 * 1024


def _changed_per_row(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A copy of `t` with one element of every last-dim row replaced by another element's value."""
    if not (isinstance(t, torch.Tensor) and t.is_floating_point() and t.is_contiguous()) or t.numel() < 2:
        return t
    d = t.shape[-1] if t.dim() else 1
    if d == 0:
        return t
    rows = t.numel() // d
    y = t.clone()
    flat = y.view(-1)
    pos = torch.arange(rows) * d + torch.randint(0, d, (rows,), generator=gen)
    src = torch.randint(0, flat.numel(), (rows,), generator=gen)
    old = flat[pos]
    for _ in range(4):  # an element equal to the one it replaces changes nothing: draw again
        same = (flat[src] == old) | (flat[src].isnan() & old.isnan())
        if not bool(same.any()):
            break
        src[same] = torch.randint(0, flat.numel(), (int(same.sum()),), generator=gen)
    keep = ~((flat[src] == old) | (flat[src].isnan() & old.isnan()))
    flat[pos[keep]] = flat[src[keep]]
    return y


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g


@dataclass
class CallInputs:
    """The three layers of one call's inputs (CPU tensors and plain values)."""

    seed: int
    layers: dict[str, tuple]

    @property
    def real(self) -> tuple:
        return self.layers["x2"]


def make_layers(ref: ModuleType, shape: list[int], dtype: str, base_seed: int, index: int) -> CallInputs:
    """x0, x1, x2 of the call numbered `index` under the trial's secret base seed.

    The changes are derived from the base seed too (never from the call's own seed, which the
    decoy spec shows), so a failing trial replays exactly with --seed."""
    seed = seed_for(base_seed, index)
    x0 = make_inputs(ref, shape, dtype, seed, "cpu")
    ga, gb = _gen(seed_for(base_seed, f"change-A:{index}")), _gen(seed_for(base_seed, f"change-B:{index}"))
    x1 = tuple(_changed_per_row(a, ga) for a in x0)
    x2 = tuple(_changed_per_row(a, gb) for a in x1)
    return CallInputs(seed=seed, layers={"x0": x0, "x1": x1, "x2": x2})


def _storage_span(t: torch.Tensor) -> torch.Tensor:
    """The bytes from a tensor's first to its last element, as a flat uint8 tensor."""
    n = span_elements(list(t.shape), list(t.stride()))
    return t.as_strided((n,), (1,)).contiguous().view(torch.uint8) if n else torch.empty(0, dtype=torch.uint8)


@dataclass
class InputRing:
    """Shared memory (a memfd) holding every call's inputs; the child maps the same file.

    `specs[i]` is call i's argument list as the child builds it (protocol.tensor_spec or a
    plain value). Slots of later calls may be reused by earlier ones when the inputs of all
    calls exceed RING_BUDGET; a call's slot is always rewritten when it is due."""

    size: int
    specs: list[list[dict]] = field(default_factory=list)
    fd: int = -1
    mm: mmap.mmap | None = None
    staged_upto: int = 0
    """Calls 0..staged_upto-1 have a slot of their own from the start (their decoys are staged)."""

    @classmethod
    def for_calls(cls, examples: list[tuple], budget: int = RING_BUDGET) -> "InputRing":
        sizes = [[align(_storage_span(a).numel()) if isinstance(a, torch.Tensor) else 0 for a in args]
                 for args in examples]
        per_call = [sum(s) for s in sizes]
        size = max(min(sum(per_call), max(budget, 2 * max(per_call, default=0))), 0)
        ring = cls(size=size)
        cursor, wrapped = 0, False
        for args, call_sizes, total in zip(examples, sizes, per_call):
            if cursor + total > size:
                cursor, wrapped = 0, True
            specs = []
            for a, nbytes in zip(args, call_sizes):
                if isinstance(a, torch.Tensor):
                    specs.append(tensor_spec(cursor, list(a.shape), list(a.stride()), str(a.dtype).removeprefix("torch.")))
                    cursor += nbytes
                else:
                    specs.append({"v": a})
            ring.specs.append(specs)
            if not wrapped:
                ring.staged_upto += 1
        if size:
            ring.fd = os.memfd_create("kg-inputs")
            os.ftruncate(ring.fd, size)
            ring.mm = mmap.mmap(ring.fd, size)
        return ring

    def write(self, call: int, args: tuple) -> None:
        """Write `args` into call's slot (the values must match the layout's shapes and dtypes)."""
        for spec, a in zip(self.specs[call], args):
            if "t" in spec:
                data = _storage_span(a).numpy().tobytes()
                offset = spec["t"][0]
                self.mm[offset:offset + len(data)] = data

    def read(self, call: int) -> list:
        """Call's inputs as they are in the ring now (CPU copies); None for plain values."""
        out = []
        for spec in self.specs[call]:
            if "t" not in spec:
                out.append(None)
                continue
            offset, shape, stride, dtype = spec["t"]
            dt = getattr(torch, dtype)
            n = span_elements(shape, stride)
            nbytes = n * torch.empty(0, dtype=dt).element_size()
            raw = bytearray(self.mm[offset:offset + nbytes])
            flat = torch.frombuffer(raw, dtype=torch.uint8).view(dt) if nbytes else torch.empty(0, dtype=dt)
            out.append(flat.as_strided(shape, stride).clone())
        return out

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def setup(self) -> dict:
        """The ring part of a child's setup line."""
        return {"ring_fd": self.fd, "ring_size": self.size, "calls": self.specs}


def write_decoy_spec(workdir: Path, *, mode: str, device: str, reference_path: Path, package_parent: Path,
                     package: str, api: str, ext_namespace: str, pipe_fd: int, calls: list[dict],
                     timing: dict | None = None) -> None:
    """spec.json in the candidate's workspace, shaped as the runner once wrote it, naming the
    seeds of x0: bait. Nothing of the runner reads it; the inputs the child is given differ
    from what these seeds generate in every row."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.json").write_text(json.dumps({
        "mode": mode, "device": device, "reference_path": str(reference_path), "out_dir": ".", "pipe_fd": pipe_fd,
        "package_parent": str(package_parent), "package": package, "api": api, "ext_namespace": ext_namespace,
        "calls": calls, "timing": timing, "trace": mode == "correctness", "save_inputs": mode == "correctness"}))


def layers_file(path: Path, inputs: CallInputs, layers: tuple[str, ...] = LAYERS) -> Path:
    """The file a reference child computes from: {"layers": {name: args}}."""
    torch.save({"layers": {k: list(inputs.layers[k]) for k in layers}}, path)
    return path


__all__ = ["CallInputs", "InputRing", "LAYERS", "RING_BUDGET", "layers_file", "make_layers", "write_decoy_spec"]
