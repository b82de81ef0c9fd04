"""What a KernelBench problem does when it runs: measured on the meta device (sizes,
bytes, FLOPs, no memory) and on the CPU at small sizes (randomness, in-place updates,
the aten ops it dispatches, the time of one reference call).

The importer runs the user's own KernelBench checkout here, as `kernelgrade check` runs a
reference.py: trusted benchmark code, never a model's answer.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from harness.execute.aten_ops import TRIVIAL_ATEN
from harness.kernelbench.runtime import Problem, cast, state_of


class ProbeRefusal(Exception):
    """The problem cannot be expressed as one op; `reason` is a key of importer.REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class MetaFacts:
    """One shape on the meta device: how much data one call touches."""

    inputs: list[tuple[tuple[int, ...], bool, int] | None]
    """(shape, is floating, element size) per forward input; None for a non-tensor."""
    state: dict[str, tuple[tuple[int, ...], bool, int]]
    outputs: list[tuple[tuple[int, ...], bool, int]]
    flops: int
    """torch.utils.flop_counter's count: matmuls, convolutions and attention only."""
    allocated: int
    """Bytes of every tensor an op returned during forward (float32): a bound on its memory."""

    def bytes(self, dtype: torch.dtype, state_names: list[str] | None = None) -> int:
        """Inputs, the state passed to the op and outputs, each read or written once."""
        size = torch.empty((), dtype=dtype).element_size()
        names = self.state if state_names is None else state_names
        items = [i for i in self.inputs if i is not None] + [self.state[n] for n in names] + self.outputs
        return sum(_numel(shape) * (size if floating else elsize) for shape, floating, elsize in items)

    @property
    def empty(self) -> bool:
        return any(_numel(s) == 0 for s, _, _ in [*(i for i in self.inputs if i), *self.outputs])


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _describe(t: torch.Tensor) -> tuple[tuple[int, ...], bool, int]:
    return tuple(t.shape), t.is_floating_point(), t.element_size()


def flat_outputs(out) -> list[torch.Tensor]:
    """A tensor or a flat tuple/list of tensors, else ProbeRefusal(non_tensor_output)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return list(out)
    what = type(out).__name__
    if isinstance(out, (tuple, list)):
        what = f"{what} of " + ", ".join(sorted({type(o).__name__ for o in out})) if out else f"empty {what}"
    raise ProbeRefusal("non_tensor_output", f"forward returns {what}, not a tensor or a tuple of tensors")


class _Functions(TorchFunctionMode):
    """Records the torch functions forward calls by name (F.linear, torch.relu, Tensor.softmax):
    composite ops that the dispatcher decomposes before _Recorder sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name and not name.startswith("_") and not name.endswith("_") and hasattr(torch.ops.aten, name):
            self.names.add(name)
        return func(*args, **(kwargs or {}))


class _Recorder(TorchDispatchMode):
    """Records aten op names and the bytes of what they return. An in-place op on a module
    buffer (`num_batches_tracked += 1`) is a state update, not the op's work: not recorded."""

    def __init__(self, buffers: tuple[torch.Tensor, ...] = ()) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.allocated = 0
        self._buffers = {t.data_ptr() for t in buffers if t.device.type != "meta"}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func._schema.name
        state_update = name.endswith("_") and args and isinstance(args[0], torch.Tensor) \
            and args[0].device.type != "meta" and args[0].data_ptr() in self._buffers
        if not state_update:
            self.ops.append(name)
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.allocated += t.numel() * t.element_size()
        return out


def meta_facts(problem: Problem, shape) -> MetaFacts:
    """Run forward on the meta device at `shape`; its errors propagate."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = problem.raw_inputs(shape, "meta")
    model = problem.build_model(shape, "meta")
    recorder = _Recorder()
    with torch.no_grad(), FlopCounterMode(display=False) as counter, recorder:
        out = model(*inputs)
    return MetaFacts(inputs=[_describe(t) if isinstance(t, torch.Tensor) else None for t in inputs],
                     state={n: _describe(t) for n, t in state_of(model).items()},
                     outputs=[_describe(t) for t in flat_outputs(out)], flops=int(counter.get_total_flops()),
                     allocated=recorder.allocated)


def _same(a, b) -> bool:
    """Bitwise equal tensors (NaN payloads included), or equal plain values."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        as_bytes = lambda t: t.detach().contiguous().reshape(-1).view(torch.uint8)  # noqa: E731
        return a.shape == b.shape and a.dtype == b.dtype and torch.equal(as_bytes(a), as_bytes(b))
    return type(a) is type(b) and a == b


def _clone(values: list) -> list:
    return [v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for v in values]


def _call(model: torch.nn.Module, inputs: list, rng_seed: int, recorder: _Recorder | None = None,
          functions: _Functions | None = None):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rng_seed)
        with torch.no_grad():
            if recorder is None or functions is None:
                return model(*inputs)
            with functions, recorder:
                return model(*inputs)


def _perturbed(t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point():
        return (t + 0.5) * 1.5  # stays positive where it was (a running variance)
    if t.dtype == torch.bool:
        return ~t
    return t + 3


@dataclass
class Behaviour:
    """What forward does at a small shape on the CPU."""

    dropped_state: list[str] = field(default_factory=list)
    """Buffers forward updates in place but never reads for its output (BatchNorm's running
    statistics in training mode): not part of the op."""
    torch_ops: list[str] = field(default_factory=list)
    """The non-trivial aten ops forward dispatches: calling one is calling the op under test."""
    n_outputs: int = 1


def behaviour(problem: Problem, shape) -> Behaviour:
    """Refuses (ProbeRefusal) randomness, non-tensor outputs and in-place stateful updates."""
    base = problem.build_model(shape, "cpu", seed=1)
    inputs = [cast(v, torch.float32) for v in problem.raw_inputs(shape, "cpu", seed=2)]
    base = base.to(torch.float32)
    before = {n: t.clone() for n, t in state_of(base).items()}
    first, first_inputs = copy.deepcopy(base), _clone(inputs)
    recorder, functions = _Recorder(tuple(first.buffers())), _Functions()
    out1 = flat_outputs(_call(first, first_inputs, 1, recorder, functions))
    for i, (now, was) in enumerate(zip(first_inputs, inputs)):
        if not _same(now, was):
            raise ProbeRefusal("stateful", f"forward modifies its input #{i} in place")
    after = state_of(first)
    params = {n for n, _ in base.named_parameters()}
    changed = [n for n in before if n in after and not _same(after[n], before[n])]
    if any(n in params for n in changed):
        raise ProbeRefusal("stateful", f"forward updates its parameter {next(n for n in changed if n in params)}")
    out2 = flat_outputs(_call(copy.deepcopy(base), _clone(inputs), 2))
    if len(out1) != len(out2) or not all(_same(a, b) for a, b in zip(out1, out2)):
        raise ProbeRefusal("randomness", "forward returns different results for the same inputs and state "
                                         "under different RNG seeds (randomness inside forward)")
    for name in changed:
        other = copy.deepcopy(base)
        target = state_of(other)[name]
        with torch.no_grad():
            target.copy_(_perturbed(target))
        out3 = flat_outputs(_call(other, _clone(inputs), 1))
        if not all(_same(a, b) for a, b in zip(out1, out3)):
            raise ProbeRefusal("stateful", f"forward updates buffer {name} in place and its output depends "
                                           f"on that buffer's value (state carried from call to call)")
    names = {op.removeprefix("aten::") for op in recorder.ops if op.startswith("aten::")} | functions.names
    ops = sorted(f"aten::{n}" for n in names if n not in TRIVIAL_ATEN and n.rstrip("_") not in TRIVIAL_ATEN)
    return Behaviour(dropped_state=changed, torch_ops=ops, n_outputs=len(out1))


def reference_ms(problem: Problem, shape, *, repeats: int = 3) -> float:
    """Median wall time of one reference call on one CPU thread, after a warm-up call."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(0)
    args = problem.make_inputs(shape, torch.float32, gen)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problem.reference(*args)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            problem.reference(*args)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(threads)
    return float(statistics.median(times))


__all__ = ["Behaviour", "MetaFacts", "ProbeRefusal", "behaviour", "flat_outputs", "meta_facts", "reference_ms"]
