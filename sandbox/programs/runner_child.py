"""The candidate's child process: `python -m sandbox.programs.runner_child REQ_FD OUT_FD`.

Runs only inside sandbox.run.run_sandboxed (scrubbed env, rlimits, own session), and holds
no secret: no seed, no spec, no reference. The parent sends one `setup` line (what to
load, where each call's inputs lie in the shared input ring), then one request at a time
(sandbox/programs/protocol.py); sandbox/programs/serve.py answers them. The parent does all
comparisons and reads the outputs itself: nothing here decides pass or fail.

Before the candidate's package is imported this process
  * binds everything it relies on (serve.py, protocol.py, tripwires.py do at their import),
  * in correctness sessions, has glibc poison every fresh block (tripwires.perturb_malloc),
  * snapshots the checker's and the timer's callables and every alias of time's clocks,
  * installs the system-call filter (sandbox/programs/seccomp.py): a fork kills it.

Original calls run with no observer at all, correctness and timed alike, so no call looks
watched. A `replay` runs a call again on the same bytes under the runner's observers: a
TorchDispatchMode that records the dispatched ops and poisons fresh allocations, and the
profiler, which also sees aten ops called from inside the extension's C++ op and, on CUDA,
the stream each kernel ran on (a marker kernel on torch's current stream tells which one
that is). What a replay sees is a tripwire: it can fail a call, never vouch for one.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Callable

# Everything the child relies on is bound before the candidate is imported.
import torch
import torch.profiler
from torch.autograd.profiler import record_function
from torch.utils._python_dispatch import TorchDispatchMode

from sandbox.programs import protocol, seccomp
from sandbox.programs.child_common import POISON_BITS
from sandbox.programs.devices import get_device
from sandbox.programs.serve import ComputeBlock, Ring, Server
from sandbox.programs.tripwires import clock_aliases, perturb_malloc, watched

log = logging.getLogger(__name__)

#: Fresh-allocation ops whose results are poisoned in replays before the candidate sees them.
ALLOC_OPS = {"empty.memory_format", "empty_like.default", "empty_strided.default",
             "new_empty.default", "new_empty_strided.default"}
POISON = {getattr(torch, k): (getattr(torch, v[0]), v[1]) for k, v in POISON_BITS.items()}


class _Tracer(TorchDispatchMode):
    """Records dispatched ops; poisons fresh floating allocations."""

    def __init__(self, poison: bool) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.poison = poison
        self.poisoned = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        schema = func._schema
        self.ops.append(f"{schema.name}.{func._overloadname}" if schema.name.startswith("aten::")
                        else schema.name)
        out = func(*args, **kwargs)
        if self.poison and func.__name__ in ALLOC_OPS and isinstance(out, torch.Tensor) \
                and out.dtype in POISON:
            view_dtype, pattern = POISON[out.dtype]
            out.view(view_dtype).fill_(pattern)
            self.poisoned += 1
        return out


def _stream_of(event) -> int | None:
    """The stream a GPU event ran on, as the profiler reports it.

    torch/autograd/profiler_util.py (2.13 and 2.14.1): FunctionEvent.event_metadata.stream
    is Kineto's "stream" field of a kernel (EventMetadata, parsed from extra_meta), and
    FunctionEvent.device_resource_id is "Resource ID on the device (ie. stream ID)", filled
    from _KinetoEvent.device_resource_id() in torch/autograd/profiler.py. Both are CUPTI's
    stream id; older torch has only device_resource_id."""
    meta = getattr(event, "event_metadata", None)
    stream = getattr(meta, "stream", None) if meta is not None else None
    if stream is None:
        stream = getattr(event, "device_resource_id", None)
    return int(stream) if isinstance(stream, int) else None


def _marker(dev) -> Callable[[], None] | None:
    """The device's current-stream marker (CUDA), never blamed on the candidate if it fails."""
    mark = getattr(dev, "mark_current_stream", None)
    if mark is None:
        return None

    def safe() -> None:
        try:
            mark()
        except Exception as err:  # noqa: BLE001 - no marker: the stream rule decides nothing
            log.warning("current-stream marker failed: %s: %s", type(err).__name__, err)

    return safe


def replay_observer(dev, ext_namespace: str) -> Callable:
    """`(fn, args) -> (result, trace)`: one call under the tracer and the profiler.

    Two record_function markers with names of this process's choosing bracket the call;
    one missing from the profile means the profiler's hooks were off when it should have
    seen it (the candidate switched RecordFunction off and left it off)."""
    mark = _marker(dev)
    tag = os.urandom(6).hex()
    before, after = f"kg_before_{tag}", f"kg_after_{tag}"

    def run(fn, args):
        tracer = _Tracer(poison=True)
        with torch.profiler.profile(activities=dev.profiler_activities()) as prof:
            with record_function(before):
                pass
            if mark:
                mark()
            with tracer:
                result = fn(*args)
            if mark:
                mark()
            dev.sync()  # device-wide: kernels on any stream are in the profile
            with record_function(after):
                pass
        events = []
        for e in prof.events():
            kind = "cuda" if str(getattr(e, "device_type", "")).endswith("CUDA") else "cpu"
            events.append({"name": e.name, "device": kind, "stream": _stream_of(e) if kind == "cuda" else None})
        names = {e["name"] for e in events}
        ok, detail, kind = dev.evidence(events + [{"name": o, "device": "cpu"} for o in tracer.ops], ext_namespace)
        ext_ops = sorted({n for n in names if n.startswith(ext_namespace + "::")}
                         | {o for o in tracer.ops if o.startswith(ext_namespace + "::")})
        trace = {"dispatched": sorted(set(tracer.ops)),
                 "profiled": sorted(n for n in names if "::" in n and not n.startswith("kg_")),
                 "ext_ops": ext_ops, "evidence": ok, "evidence_detail": detail, "evidence_kind": kind,
                 "poisoned_allocs": tracer.poisoned, "markers": [before in names, after in names]}
        if dev.name == "cuda":
            trace["gpu_events"] = [e for e in events if e["device"] == "cuda"]
        return result, trace

    return run


def main(argv: list[str]) -> int:
    req_fd, out_fd = int(argv[1]), int(argv[2])
    protocol.send(out_fd, {"kind": "hello", "pid": os.getpid()})
    reader = protocol.LineReader(req_fd)
    setup = reader.next()
    dev = get_device(setup["device"])
    notes = [perturb_malloc()] if setup.get("perturb") else []
    ring = Ring(setup["ring_fd"], setup["ring_size"], setup["calls"])
    observe = None
    if setup.get("replays"):
        observe = replay_observer(dev, setup["ext_namespace"])
        # The profiler's first use imports lazily and rewraps a few torch functions: do it
        # now, so the snapshot below sees the final objects and only the candidate's count.
        observe(lambda: torch.empty(1).add_(1), ())
    ComputeBlock.warm()
    before, clocks = watched(), clock_aliases()
    if setup.get("filter", True):
        notes.append(seccomp.install())
    try:
        sys.path.insert(0, setup["package_parent"] or ".")
        module = importlib.import_module(setup["package"])
        fn = getattr(module, setup["api"])
    except BaseException as err:  # noqa: BLE001 - a broken package is a result
        protocol.send(out_fd, {"kind": "fatal", "error": f"cannot load {setup['package']}.{setup['api']}: "
                                                        f"{type(err).__name__}: {err}"[:1000]})
        return 0
    server = Server(fn, ring, dev, reader, out_fd, watched=before, clocks=clocks, keep_outputs=bool(setup.get("keep")),
                    watched_call=observe, own_modes=(_Tracer,), block_namespace=setup["ext_namespace"])
    server.reply({**server.status(), "kind": "loaded", "notes": notes, "ring": ring.addr})
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
