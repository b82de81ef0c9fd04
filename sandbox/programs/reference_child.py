"""The reference's own child process: `python -m sandbox.programs.reference_child REQ_FD OUT_FD`.

It never imports the candidate. It speaks the same protocol as the candidate's child
(sandbox/programs/protocol.py) through the same request loop (sandbox/programs/serve.py),
so in timing the reference is called, synchronised, timed, stopped and read exactly like
the candidate. Its own op, `outputs`, computes the reference on the inputs of a file the
parent wrote (every layer of a call's inputs: the real ones and the decoys) and saves the
results beside it: the reference outputs the parent compares with. Running it in its own
process means a candidate that patches torch, the timer or the reference changes only its own.
"""

from __future__ import annotations

import os
import sys

import torch

from sandbox.programs import protocol
from sandbox.programs.child_common import flatten_outputs, import_by_path
from sandbox.programs.devices import get_device
from sandbox.programs.serve import ComputeBlock, Ring, Server


def _plain(value):
    return value.detach().cpu().clone() if isinstance(value, torch.Tensor) else None


def outputs_op(ref, dev):
    """The `outputs` op: {"file": IN.pt, "out": OUT.pt} -> OUT.pt holding, per layer name of
    IN.pt's {"layers": {name: [args...]}}, the reference's outputs on those args."""

    def op(name: str, msg: dict) -> dict:
        if name != "outputs":
            return {"kind": "error", "seq": msg.get("seq"), "error": f"unknown op {name!r}"}
        data = torch.load(msg["file"], map_location="cpu", weights_only=True)
        done = {}
        for layer, args in data["layers"].items():
            args = tuple(dev.to_device(a) if isinstance(a, torch.Tensor) else a for a in args)
            try:
                result = ref.reference(*args)
                dev.sync()
            except Exception as err:  # noqa: BLE001 - the reference's own failure, told to the parent
                shapes = ", ".join(str(tuple(a.shape)) if isinstance(a, torch.Tensor) else repr(a) for a in args)
                return {"kind": "error", "seq": msg.get("seq"), "reference_failed": True,
                        "error": f"reference({shapes}) raised {type(err).__name__}: {err}"[:1000]}
            done[layer] = [_plain(v) for v in flatten_outputs(result)]
        torch.save(done, msg["out"])
        return {"kind": "outputs", "seq": msg["seq"], "out": msg["out"]}

    return op


def compiled(fn):
    """The reference under torch.compile, for timing against KernelBench's second baseline. It
    compiles on its first (warm-up) call, in this process: no compile workers, so nothing outlives
    the child and the timed calls share the cores with nothing of its own."""
    import torch._inductor.config as inductor

    inductor.compile_threads = 1
    return torch.compile(fn)


def main(argv: list[str]) -> int:
    req_fd, out_fd = int(argv[1]), int(argv[2])
    protocol.send(out_fd, {"kind": "hello", "pid": os.getpid()})
    reader = protocol.LineReader(req_fd)
    setup = reader.next()
    dev = get_device(setup["device"])
    ref = import_by_path(setup["reference_path"])
    ring = Ring(setup["ring_fd"], setup["ring_size"], setup["calls"])
    fn = compiled(ref.reference) if setup.get("compile") else ref.reference
    ComputeBlock.warm()
    server = Server(fn, ring, dev, reader, out_fd, extra=outputs_op(ref, dev), eager=ref.reference)
    server.reply({"kind": "loaded", "notes": [], "ring": ring.addr})
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
