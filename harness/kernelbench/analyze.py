"""One KernelBench problem file -> everything a case and its reference need, or the reason
it cannot be one op (never dropped silently: importer.py lists every refusal)."""

from __future__ import annotations

import inspect
import keyword
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.kernelbench.probe import MetaFacts, ProbeRefusal, behaviour, meta_facts, reference_ms
from harness.kernelbench.runtime import Problem, slug
from harness.kernelbench.scaling import BUDGET_MS, MAX_CPU_BYTES, REFUSE_BYTES, floor_of, scale_for_cpu, second_shape

log = logging.getLogger(__name__)

#: An H100's memory: a problem whose one call needs more cannot run on the GPU it targets.
H100_BYTES = 80 * 10 ** 9

#: Refusal keys and the words the import prints for them.
REASONS = {
    "randomness": "randomness inside forward",
    "non_tensor_output": "a non-tensor output",
    "stateful": "an in-place stateful update",
    "too_large": "too large even scaled",
    "load_error": "the file does not load",
    "not_a_problem": "not a KernelBench problem",
    "analysis_error": "forward fails when analysed",
}


@dataclass(frozen=True)
class Refusal:
    """A problem that is not imported, and why (`reason` is a key of REASONS)."""

    path: Path
    level: int
    number: int
    reason: str
    detail: str

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class ArgSpec:
    name: str
    """The op's parameter name."""
    source: str
    """'input k' or the parameter/buffer's qualified name (conv.weight)."""
    kind: str
    """'parameter', 'buffer' or 'input'."""
    annotation: str
    """'Tensor', 'int', 'float', 'bool' or another type name."""
    shape: tuple[int, ...] | None
    dtype: str | None


@dataclass
class Analysis:
    path: Path
    level: int
    number: int
    size_names: list[str]
    cuda_shape: list[int]
    cpu_shapes: list[list[int]]
    """The scaled shape (one reference call within the budget), then a smaller one."""
    cpu_ms: float | None
    """The measured time of one reference call at cpu_shapes[0] (ms, one thread)."""
    args: list[ArgSpec]
    state_names: list[str]
    dropped_state: list[str]
    n_outputs: int
    torch_ops: list[str]
    facts: dict[tuple[int, ...], MetaFacts]
    init_inputs: dict[tuple[int, ...], list]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def api(self) -> str:
        name = slug(self.path.stem) or "forward"
        if not name[0].isalpha():
            name = "kb_" + name
        return name + "_op" if keyword.iskeyword(name) else name

    def bytes_moved(self, shape, dtype: torch.dtype) -> int:
        return self.facts[tuple(shape)].bytes(dtype, self.state_names)

    def flops(self, shape) -> int | None:
        counted = self.facts[tuple(shape)].flops
        return counted or None


def _arg_name(text: str, taken: set[str]) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = "p_" + name
    if keyword.iskeyword(name):
        name += "_"
    base, k = name, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _input_names(model_cls: type, n: int) -> list[str]:
    try:
        params = list(inspect.signature(model_cls.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"input{i}" for i in range(n)]


def _annotation(value) -> str:
    return "Tensor" if isinstance(value, torch.Tensor) else type(value).__name__


def _args(problem: Problem, facts: MetaFacts, state_names: list[str]) -> list[ArgSpec]:
    inputs = problem.raw_inputs(None, "meta")
    mod = problem.module()
    taken: set[str] = set()
    out = []
    for i, (name, value) in enumerate(zip(_input_names(mod.Model, len(inputs)), inputs)):
        is_t = isinstance(value, torch.Tensor)
        out.append(ArgSpec(_arg_name(name, taken), f"input {i}", "input", _annotation(value),
                           tuple(value.shape) if is_t else None,
                           (str(value.dtype).removeprefix("torch.") if is_t else None)))
    params = {n for n, _ in problem.build_model(None, "meta").named_parameters()}
    for qual in state_names:
        shape, floating, _ = facts.state[qual]
        out.append(ArgSpec(_arg_name(qual, taken), qual, "parameter" if qual in params else "buffer", "Tensor",
                           shape, None if floating else "int64"))
    return out


def _number(path: Path) -> int:
    head = path.stem.split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def analyze_problem(path: Path, level: int, *, budget_ms: float = BUDGET_MS,
                    max_cpu_bytes: int = MAX_CPU_BYTES) -> Analysis | Refusal:
    """Load, size, probe and scale one problem file."""
    number = _number(path)

    def refuse(reason: str, detail: str) -> Refusal:
        return Refusal(path=path, level=level, number=number, reason=reason, detail=detail[:300])

    try:
        problem = Problem(path)
        mod = problem.module()
    except Exception as err:  # noqa: BLE001 - the user's file: any failure is its result
        return refuse("load_error", f"{type(err).__name__}: {err}")
    missing = [a for a in ("Model", "get_inputs", "get_init_inputs") if not callable(getattr(mod, a, None))]
    if missing:
        return refuse("not_a_problem", f"defines no {', '.join(missing)}")
    facts: dict[tuple[int, ...], MetaFacts] = {}

    def facts_at(shape) -> MetaFacts:
        key = tuple(shape)
        if key not in facts:
            found = meta_facts(problem, shape)
            if facts and list(found.state) != list(next(iter(facts.values())).state):
                # a size that changes which parameters exist (a layer count): not a dimension
                raise ValueError("the module's parameters differ at this shape")
            facts[key] = found
        return facts[key]

    try:
        cuda = facts_at(problem.default_shape)
    except ProbeRefusal as err:
        return refuse(err.reason, err.detail)
    except Exception as err:  # noqa: BLE001
        why = small_cpu_refusal(problem)  # e.g. `.item()` for a number: a refusal of its own
        if why is not None:
            return refuse(why.reason, why.detail)
        return refuse("analysis_error", f"does not run on the meta device (used to size it): "
                                        f"{type(err).__name__}: {err}")
    need = cuda.bytes(torch.float32)
    if need > H100_BYTES:
        return refuse("too_large", f"one call reads and writes {need / 1e9:.0f} GB at the problem's sizes, "
                                   f"more than an H100's 80 GB")
    try:
        scaled = scale_for_cpu(problem.size_names, problem.default_shape, facts_at,
                               lambda shape: reference_ms(_with_state(problem, facts_at(shape)), shape),
                               budget_ms=budget_ms, max_bytes=max_cpu_bytes)
        if scaled.ms is None or (scaled.facts and scaled.facts.bytes(torch.float32) > REFUSE_BYTES):
            size = scaled.facts.bytes(torch.float32) if scaled.facts else 0
            return refuse("too_large", f"still {size / 2 ** 20:.0f} MiB per call at the smallest CPU shape "
                                       f"{dict(zip(problem.size_names, scaled.shape))}")
        found = behaviour(problem, scaled.shape)
    except ProbeRefusal as err:
        return refuse(err.reason, err.detail)
    except Exception as err:  # noqa: BLE001
        return refuse("analysis_error", f"forward fails on the CPU at small sizes: {type(err).__name__}: {err}")
    state_names = [n for n in cuda.state if n not in found.dropped_state]
    notes = []
    if not scaled.fits and scaled.ms is not None and scaled.ms > budget_ms:
        notes.append(f"one CPU reference call takes {scaled.ms:.0f} ms at the smallest CPU shape reached "
                     f"(budget {budget_ms:g} ms)")
    elif not scaled.fits and scaled.facts is not None:
        notes.append(f"one call reads and writes {scaled.facts.bytes(torch.float32) / 2 ** 20:.0f} MiB at the "
                     f"smallest CPU shape reached (cap {max_cpu_bytes / 2 ** 20:g} MiB)")
    if found.dropped_state:
        notes.append("buffers forward only updates are not part of the op: " + ", ".join(found.dropped_state))
    cpu_shapes = [list(scaled.shape)]
    smaller = second_shape(problem.size_names, scaled.shape, scaled.frozen, facts_at)
    if smaller is not None and smaller != scaled.shape:
        cpu_shapes.append(smaller)
    shapes = list(dict.fromkeys([tuple(problem.default_shape), *map(tuple, cpu_shapes)]))
    init = {s: problem.init_inputs(list(s)) for s in shapes}
    return Analysis(path=path, level=level, number=number, size_names=problem.size_names,
                    cuda_shape=list(problem.default_shape), cpu_shapes=cpu_shapes, cpu_ms=scaled.ms,
                    args=_args(problem, cuda, state_names), state_names=state_names,
                    dropped_state=found.dropped_state, n_outputs=found.n_outputs, torch_ops=found.torch_ops,
                    facts={s: facts_at(list(s)) for s in shapes}, init_inputs=init, notes=notes)


def small_cpu_refusal(problem: Problem) -> ProbeRefusal | None:
    """For a forward the meta device cannot run: call it once on the CPU with every dimension
    at its floor (then halved fewer times) and keep a refusal it shows (a non-tensor output,
    randomness, an in-place update); None when it runs cleanly or not at all."""
    start = problem.default_shape
    for times in range(24, -1, -1):
        shape = [max(floor_of(n), v >> times) for n, v in zip(problem.size_names, start)]
        try:
            behaviour(problem, shape)
            return None
        except ProbeRefusal as err:
            return err
        except Exception:  # noqa: BLE001 - too small for the problem: try larger
            continue
    return None


def _with_state(problem: Problem, facts: MetaFacts) -> Problem:
    """The problem with every parameter and buffer passed (used to time it while scaling)."""
    if problem.state_names != list(facts.state):
        problem.state_names = list(facts.state)
    return problem


__all__ = ["Analysis", "ArgSpec", "H100_BYTES", "REASONS", "Refusal", "analyze_problem"]
