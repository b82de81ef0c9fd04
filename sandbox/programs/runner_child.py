"""The candidate's child process: `python -m sandbox.programs.runner_child SPEC.json`.

Runs only inside sandbox.run.run_sandboxed (scrubbed env, rlimits, own session).
It imports the candidate package, calls its API on inputs made from secret seeds,
and writes outputs (and the inputs as they were after the call) to files in its
workspace; one JSON line per call goes back to the parent over the inherited pipe.
The parent does all comparisons: nothing here decides pass or fail.

In correctness mode each call runs under
  * a TorchDispatchMode that records the ops the wrapper dispatches and poisons every
    freshly allocated floating buffer with a NaN bit pattern, and
  * the profiler, which also sees aten ops called from inside the extension's C++ op and,
    on CUDA, the stream each kernel ran on; a marker kernel launched on torch's current
    stream before and after the call tells which stream that is.
After the last call the outputs of earlier calls (kept alive) are compared with the copies
taken when each call returned: one that changed was written later, i.e. the work was
deferred across calls, and that call's record is sent again with the evidence withdrawn.
"""

from __future__ import annotations

import builtins
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Callable

# Everything the child relies on is bound before the candidate is imported, and
# checked for replacement afterwards (monkeypatching the checker or the timer).
import torch
import torch.profiler
from torch.utils._python_dispatch import TorchDispatchMode

from sandbox.programs.child_common import import_by_path, POISON_BITS, ChildSpec, Pipe, flatten_outputs, make_inputs, timing_loop
from sandbox.programs.devices import get_device

log = logging.getLogger(__name__)
_clone = torch.Tensor.clone
_equal = torch.equal
_save = torch.save
_load = torch.load
_open = builtins.open
_json_dumps = json.dumps
_perf_counter_ns = time.perf_counter_ns

#: Fresh-allocation ops whose results are poisoned before the candidate sees them.
ALLOC_OPS = {"empty.memory_format", "empty_like.default", "empty_strided.default",
             "new_empty.default", "new_empty_strided.default"}
POISON = {getattr(torch, k): (getattr(torch, v[0]), v[1]) for k, v in POISON_BITS.items()}


def _watched() -> dict[str, object]:
    """Callables a cheat would replace to fool the checker or the timer."""
    import torch.testing

    return {
        "time.perf_counter_ns": time.perf_counter_ns, "time.perf_counter": time.perf_counter,
        "time.time": time.time, "time.monotonic": time.monotonic, "time.process_time": time.process_time,
        "torch.allclose": torch.allclose, "torch.equal": torch.equal, "torch.isclose": torch.isclose,
        "torch.testing.assert_close": torch.testing.assert_close, "torch.save": torch.save,
        "torch.load": torch.load, "torch.Tensor.clone": torch.Tensor.clone,
        "torch.Tensor.copy_": torch.Tensor.copy_, "torch.Tensor.__eq__": torch.Tensor.__eq__,
        "torch.cuda.synchronize": torch.cuda.synchronize, "torch.cuda.Event": torch.cuda.Event,
        "torch.cuda._sleep": torch.cuda._sleep,  # the current-stream marker (sandbox/programs/devices/cuda.py)
        "torch.Generator": torch.Generator, "torch.randn": torch.randn, "torch.manual_seed": torch.manual_seed,
        "torch.profiler.profile": torch.profiler.profile, "TorchDispatchMode": TorchDispatchMode,
        "json.dumps": json.dumps, "os.write": os.write, "builtins.open": builtins.open,
        "sandbox.programs.child_common.timing_loop": timing_loop,
        "sandbox.programs.child_common.make_inputs": make_inputs,
    }


def _changed(before: dict[str, object], ref: object) -> list[str]:
    after = _watched()
    names = [k for k, v in before.items() if k in after and after[k] is not v]
    for attr in ("reference", "make_inputs"):
        if getattr(ref, attr, None) is not before.get(f"reference.{attr}"):
            names.append(f"reference.{attr}")
    return names


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


def _storage_ptr(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - tensors without storage cannot alias
        return -1


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


def _current_stream(spec: ChildSpec) -> dict:
    """torch's current stream as torch names it (for the trace file; the check uses the marker)."""
    if spec.device != "cuda":
        return {}
    s = torch.cuda.current_stream()
    return {"torch_stream_id": int(s.stream_id), "cuda_stream": int(s.cuda_stream)}


def _same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and \
        _equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))


def written_later(kept: list[tuple[int, int, torch.Tensor]],
                  copy_of: Callable[[int, int], torch.Tensor]) -> dict[int, list[int]]:
    """Call id -> indices of its outputs that changed after the call returned.

    `kept`: (call id, output index, the output tensor, still alive); `copy_of(call id, index)`:
    the CPU copy taken when the call returned. An output whose buffer another call also
    returned is left to the cached-result rule: rewriting it is what that cheat does."""
    owners: dict[int, set[int]] = {}
    for cid, _, value in kept:
        owners.setdefault(_storage_ptr(value), set()).add(cid)
    changed: dict[int, list[int]] = {}
    for cid, k, value in kept:
        if len(owners[_storage_ptr(value)]) > 1:
            continue
        now, _ = _plain_copy(value)
        if now is not None and not _same_bytes(now, copy_of(cid, k)):
            changed.setdefault(cid, []).append(k)
    return changed


def _saved_outputs(out_dir: str) -> Callable[[int, int], torch.Tensor]:
    """copy_of for written_later: the call files, read back one call at a time (not all kept in memory)."""
    last: dict[int, list] = {}

    def copy_of(cid: int, k: int) -> torch.Tensor:
        if cid not in last:
            last.clear()
            last[cid] = _load(os.path.join(out_dir, f"call_{cid}.pt"), weights_only=True)["outputs"]
        return last[cid][k]

    return copy_of


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


def deferred_detail(outputs: list[int]) -> str:
    which = ", ".join(map(str, outputs))
    return (f"output {which} changed after the call had returned (written during a later call): the work is "
            f"deferred or batched across calls, so a timer around one call misses it")


def _plain_copy(value):
    """A plain CPU torch.Tensor copy (or a note of what else came back)."""
    if isinstance(value, torch.Tensor):
        if type(value) is not torch.Tensor:
            return None, f"returned a tensor subclass {type(value).__name__}"
        return _clone(value.detach()).cpu(), None
    return None, f"returned {type(value).__name__}, not a tensor"


def _correctness(spec: ChildSpec, fn, ref, dev, pipe: Pipe) -> None:
    kept: list[tuple[int, int]] = []  # (call id, storage ptr) of earlier outputs, kept alive
    alive: list = []
    returned: list[tuple[int, int, torch.Tensor]] = []  # for written_later()
    sent: dict[int, dict] = {}
    mark = _marker(dev)
    for call in spec.calls:
        record: dict = {"kind": "call", "id": call.id}
        try:
            inputs = make_inputs(ref, call.shape, call.dtype, call.seed, spec.device)
            in_ptrs = [_storage_ptr(t) if isinstance(t, torch.Tensor) else None for t in inputs]
            tracer = _Tracer(poison=True)
            events: list[dict] = []
            if spec.trace:
                with torch.profiler.profile(activities=dev.profiler_activities()) as prof:
                    if mark:
                        mark()
                    with tracer:
                        result = fn(*inputs)
                    if mark:
                        mark()
                    dev.sync()  # device-wide: kernels on any stream are in the profile
                for e in prof.events():
                    kind = "cuda" if str(getattr(e, "device_type", "")).endswith("CUDA") else "cpu"
                    events.append({"name": e.name, "device": kind,
                                   "stream": _stream_of(e) if kind == "cuda" else None})
                if spec.device == "cuda":  # for a reader of the artifacts; the check uses the events
                    with _open(os.path.join(spec.out_dir, f"trace_{call.id}.json"), "w") as fh:
                        fh.write(_json_dumps({"current_stream": _current_stream(spec),
                                              "gpu_events": [e for e in events if e["device"] == "cuda"]}))
            else:
                result = fn(*inputs)
                dev.sync()
            outs = flatten_outputs(result)
            saved, notes, aliases = [], [], []
            for k, value in enumerate(outs):
                copy, note = _plain_copy(value)
                saved.append(copy)
                if note:
                    notes.append(f"output {k}: {note}")
                    aliases.append(None)
                    continue
                ptr = _storage_ptr(value)
                returned.append((call.id, k, value))
                alias = {"input": next((i for i, p in enumerate(in_ptrs) if p is not None and p == ptr), None),
                         "earlier": next((cid for cid, p in kept if p == ptr), None)}
                aliases.append(alias)
                kept.append((call.id, ptr))
            alive.append(result)  # earlier outputs stay allocated, so reuse shows as aliasing
            data = {"outputs": saved}
            if spec.save_inputs:
                data["inputs"] = [_clone(t.detach()).cpu() if isinstance(t, torch.Tensor) else None
                                  for t in inputs]
            path = os.path.join(spec.out_dir, f"call_{call.id}.pt")
            _save(data, path)
            ext_ops = sorted({e["name"] for e in events if e["name"].startswith(spec.ext_namespace + "::")}
                             | {o for o in tracer.ops if o.startswith(spec.ext_namespace + "::")})
            ok, detail, kind = dev.evidence(events + [{"name": o, "device": "cpu"} for o in tracer.ops],
                                            spec.ext_namespace)
            record.update(status="ok", file=path, notes=notes, aliases=aliases,
                          dispatched=sorted(set(tracer.ops)),
                          profiled=sorted({e["name"] for e in events if "::" in e["name"]}),
                          ext_ops=ext_ops, evidence=ok, evidence_detail=detail, evidence_kind=kind,
                          poisoned_allocs=tracer.poisoned)
            sent[call.id] = record
        except MemoryError as err:
            record.update(status="error", error=f"out of memory: {err}"[:500])
        except Exception as err:  # noqa: BLE001 - the candidate's exception is a result
            msg = f"{type(err).__name__}: {err}"
            if "can't allocate memory" in msg or "out of memory" in msg.lower():
                msg = "out of memory: " + msg
            record.update(status="error", error=msg[:1000],
                          traceback=traceback.format_exc(limit=4)[-2000:])
        pipe.send(record)
    # A record sent again replaces the first one in the parent (harness/execute/runner.py keeps the
    # last record per call id).
    try:
        dev.sync()
        late = written_later([r for r in returned if r[0] in sent], _saved_outputs(spec.out_dir))
    except Exception as err:  # noqa: BLE001 - e.g. a sticky CUDA error; the calls' records stand
        log.warning("outputs not re-checked after the last call: %s: %s", type(err).__name__, err)
        return
    for cid, outputs in late.items():
        if cid in sent:
            pipe.send({**sent[cid], "evidence": False, "evidence_detail": deferred_detail(outputs),
                       "evidence_kind": "deferred"})


def _timing(spec: ChildSpec, fn, ref, dev, pipe: Pipe) -> None:
    t = spec.timing
    assert t is not None
    all_args = [make_inputs(ref, t.shape, t.dtype, s, spec.device) for s in t.seeds]
    saved: dict[int, list] = {}
    wanted = set(t.save)

    def keep(j: int, out) -> None:
        if j in wanted:
            saved[j] = [_plain_copy(v)[0] for v in flatten_outputs(out)]

    start = _perf_counter_ns()
    times = timing_loop(fn, lambda i: all_args[i], t, dev, keep)
    total = _perf_counter_ns() - start
    path = os.path.join(spec.out_dir, "timed_outputs.pt")
    _save({str(j): v for j, v in saved.items()}, path)
    pipe.send({"kind": "timing", "times_ns": times, "loop_ns": total, "file": path})


def main(argv: list[str]) -> int:
    spec = ChildSpec.model_validate_json(open(argv[1]).read())
    pipe = Pipe(spec.pipe_fd)
    dev = get_device(spec.device)
    ref = import_by_path(spec.reference_path)
    # The profiler's first use imports lazily and rewraps a few torch functions: do it now,
    # so the snapshot below sees the final objects and only the candidate's changes count.
    with torch.profiler.profile(activities=dev.profiler_activities()):
        with _Tracer(poison=True):
            torch.empty(1).add_(1)
    watched = _watched()
    watched["reference.reference"] = ref.reference
    watched["reference.make_inputs"] = ref.make_inputs
    try:
        sys.path.insert(0, spec.package_parent or ".")
        module = importlib.import_module(spec.package)
        fn = getattr(module, spec.api)
    except BaseException as err:  # noqa: BLE001 - a broken package is a result
        pipe.send({"kind": "fatal", "error": f"cannot load {spec.package}.{spec.api}: "
                                             f"{type(err).__name__}: {err}"[:1000]})
        return 0
    pipe.send({"kind": "loaded", "patched": _changed(watched, ref)})
    if spec.mode == "correctness":
        _correctness(spec, fn, ref, dev, pipe)
    else:
        _timing(spec, fn, ref, dev, pipe)
    pipe.send({"kind": "done", "patched": _changed(watched, ref)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
