"""The request loop both children run (sandbox/programs/protocol.py): the candidate's
(runner_child) and the reference's (reference_child), so the two are timed by the same code.

Each call runs on the inputs the parent has just written into the call's slot of the ring:
sync, start the in-process timer, call, sync, stop it. The reply says where the outputs
lie (on CUDA: in a host copy taken after a device-wide synchronise) and how long the call
took by the child's own clock; then the child stops itself. The parent reads the outputs
from this process's memory while it is stopped, so nothing of the candidate's runs between
the return and the look, and it times the call on its own clock as well.
"""

from __future__ import annotations

import mmap
import os
import signal
import traceback
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sandbox.programs import protocol
from sandbox.programs.child_common import computes, flatten_outputs
from sandbox.programs.tripwires import changed, modes_left, rebound

# Bound before any candidate code runs.
_kill, _getpid, _SIGSTOP = os.kill, os.getpid, signal.SIGSTOP
_save = torch.save
_clone = torch.Tensor.clone
_DTYPES = {name: getattr(torch, name) for name in (
    "float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool",
    "complex64", "complex128")}


def stop_self() -> None:
    """SIGSTOP this process (every thread): the parent continues it with the next request."""
    _kill(_getpid(), _SIGSTOP)


class Ring:
    """The parent's input ring, mapped here; `staged[i]` is call i's argument tuple.

    Tensors are views of the shared memory: what the parent writes into a slot is what the
    call sees. Later calls' slots hold decoys until their call is due (the parent writes the
    real inputs then), so an early look at them sees inputs that are wrong in every row."""

    def __init__(self, fd: int, size: int, calls: list[list[dict]]) -> None:
        self.mm = mmap.mmap(fd, size) if size else None
        self.base = torch.frombuffer(self.mm, dtype=torch.uint8) if size else torch.empty(0, dtype=torch.uint8)
        self.addr = self.base.data_ptr() if size else 0
        self.staged = [tuple(self._arg(a) for a in args) for args in calls]

    def _arg(self, spec: dict):
        if "v" in spec:
            return spec["v"]
        offset, shape, stride, dtype = spec["t"]
        dt = _DTYPES[dtype]
        n = protocol.span_elements(shape, stride)
        nbytes = n * torch.empty(0, dtype=dt).element_size()
        flat = self.base[offset:offset + nbytes].view(dt)
        return flat.as_strided(shape, stride)


def describe(result, device) -> tuple[list[dict], list]:
    """(descriptor per output, host tensors to keep alive until the parent has read them)."""
    descs, keep = [], []
    for value in flatten_outputs(result):
        if not isinstance(value, torch.Tensor):
            descs.append({"note": f"returned {type(value).__name__}, not a tensor"})
            continue
        if type(value) is not torch.Tensor:
            descs.append({"note": f"returned a tensor subclass {type(value).__name__}"})
            continue
        host = device.to_host(value)
        keep.append(host)
        shape, stride = list(host.shape), list(host.stride())
        descs.append({"ptr": host.data_ptr(), "shape": shape, "stride": stride,
                      "dtype": str(host.dtype).removeprefix("torch."),
                      "span": protocol.span_elements(shape, stride) * host.element_size(),
                      "device": str(value.device.type)})
    return descs, keep


def _error(err: BaseException) -> dict:
    msg = f"{type(err).__name__}: {err}"
    if isinstance(err, MemoryError) or "can't allocate memory" in msg or "out of memory" in msg.lower():
        msg = "out of memory: " + msg
    return {"error": msg[:1000], "traceback": traceback.format_exc(limit=4)[-2000:]}


class ComputeBlock(TorchDispatchMode):
    """A `blocked` timed call: PyTorch's compute ops raise (the judge's rule: anything but the
    candidate's own ops and ops that allocate, view, copy or fill). With no namespace it only
    passes ops through, so the reference's child pays the same mode on its blocked calls and
    the parent can tell the mode's own cost from the work. The parent compares the candidate's
    blocked calls with its ordinary ones (harness/execute/timing.py): speed that exists only
    while PyTorch can compute is not the candidate's own."""

    def __init__(self, own_namespace: str | None) -> None:
        super().__init__()
        self.own = own_namespace

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode otherwise wraps __torch_dispatch__ in torch._dynamo.disable, whose
        # first call imports torch._dynamo (1.4-1.7 s in every child, and it rewraps
        # torch.manual_seed). Nothing of ours is compiled under the mode: a torch.compile
        # reference runs eager when blocked.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if self.own is not None and computes(name, self.own):
            raise RuntimeError(f"PyTorch's compute is unavailable in this call: {name}")
        return func(*args, **(kwargs or {}))

    @staticmethod
    def warm() -> None:
        """Whatever the mode's first use imports lazily is paid at load, before the tripwires'
        snapshot and the first timed call."""
        with ComputeBlock(None):
            torch.empty(1).add_(1)


class Server:
    """One child's side of the conversation. `watched_call(fn, args)` runs a replay under the
    runner's observers and returns (result, trace); `extra(op, msg)` answers other ops."""

    def __init__(self, fn: Callable, ring: Ring, device, reader: protocol.LineReader, out_fd: int, *,
                 watched: dict | None = None, clocks: list | None = None, keep_outputs: bool = False,
                 watched_call: Callable | None = None, own_modes: tuple = (),
                 extra: Callable[[str, dict], dict] | None = None, block_namespace: str | None = None,
                 eager: Callable | None = None) -> None:
        self.fn, self.ring, self.dev, self.reader, self.out_fd = fn, ring, device, reader, out_fd
        self.watched, self.clocks = watched, clocks
        self.keep_outputs, self.watched_call, self.own_modes, self.extra = keep_outputs, watched_call, own_modes, extra
        self.block_namespace = block_namespace
        """The candidate's op namespace (its child), None in the reference's: see ComputeBlock."""
        self.eager = eager
        """The reference's own function when `fn` is its torch.compile'd form: calls that ask for
        `eager` run it (the mode's cost is measured on it; a compiled function under a mode recompiles)."""
        self.kept: dict[int, object] = {}
        self.hold: list = []

    def reply(self, msg: dict) -> None:
        protocol.send(self.out_fd, msg)
        stop_self()

    def status(self, seq=None) -> dict:
        """The tripwires that are not about one call: replaced callables, rebound clocks."""
        return {"kind": "status", "seq": seq, "patched": changed(self.watched) if self.watched is not None else [],
                "rebound": rebound(self.clocks) if self.clocks is not None else []}

    def _call(self, msg: dict, watched: bool) -> dict:
        i = int(msg["call"])
        args = self.ring.staged[i]
        out: dict = {"kind": "ret", "seq": msg["seq"], "call": i}
        try:
            if self.dev.name != "cpu":
                args = tuple(self.dev.to_device(a) if isinstance(a, torch.Tensor) else a for a in args)
            if msg.get("flush"):
                self.dev.flush(i)
            if watched and self.watched_call is not None:
                result, out["trace"] = self.watched_call(self.fn, args)
            else:
                block = ComputeBlock(self.block_namespace) if msg.get("blocked") else None
                timer = self.dev.timer()
                self.dev.wake()
                self.dev.sync()
                if block is not None:
                    block.__enter__()
                try:
                    timer.start()
                    result = (self.eager if msg.get("eager") and self.eager else self.fn)(*args)
                    out["t_ns"] = timer.stop()  # synchronises the device first
                finally:
                    if block is not None:
                        block.__exit__(None, None, None)
                out["modes_left"] = modes_left((*self.own_modes, ComputeBlock))
            out["outputs"], self.hold = describe(result, self.dev)
            if self.keep_outputs and not watched:
                self.kept[i] = result  # alive, so a later write into it shows, and reuse is aliasing
        except BaseException as err:  # noqa: BLE001 - the candidate's exception is a result
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            out.update(_error(err))
        return out

    def _save(self, msg: dict) -> dict:
        i = int(msg["call"])
        outs = [_clone(v.detach()).cpu() if isinstance(v, torch.Tensor) else None
                for v in flatten_outputs(self.kept.get(i))]
        ins = [_clone(a.detach()).cpu() if isinstance(a, torch.Tensor) else None for a in self.ring.staged[i]]
        _save({"outputs": outs, "inputs": ins}, f"call_{i}.pt")
        return {"kind": "saved", "seq": msg["seq"], "call": i}

    def run(self) -> None:
        while True:
            try:
                msg = self.reader.next()
            except EOFError:
                return
            op = msg.get("op")
            self.hold = []
            if op == "call":
                self.reply(self._call(msg, watched=False))
            elif op == "replay":
                self.reply(self._call(msg, watched=True))
            elif op == "status":
                self.reply(self.status(msg.get("seq")))
            elif op == "save":
                try:
                    self.reply(self._save(msg))
                except Exception as err:  # noqa: BLE001 - an output that cannot be saved
                    self.reply({"kind": "saved", "seq": msg.get("seq"), **_error(err)})
            elif self.extra is not None:
                self.reply(self.extra(op, msg))
            else:
                self.reply({"kind": "error", "seq": msg.get("seq"), "error": f"unknown op {op!r}"})


__all__ = ["ComputeBlock", "Ring", "Server", "describe", "stop_self"]
