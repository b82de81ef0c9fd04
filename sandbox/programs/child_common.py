"""Code shared by the children and the parent: the poison pattern, seeded input generation
(the parent makes every input; the reference child makes the decoy seeds' inputs the same
way) and how a call's result is flattened. The conversation itself is
sandbox/programs/protocol.py, the request loop sandbox/programs/serve.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from types import ModuleType
from pathlib import Path
from typing import Any


#: aten ops that allocate, view, copy or fill: they cannot compute an op's result.
TRIVIAL_ATEN = frozenset("""
empty empty_like empty_strided empty_permuted new_empty new_empty_strided zeros zeros_like new_zeros
zero_ fill_ full full_like new_full ones ones_like new_ones view _unsafe_view reshape _reshape_alias
alias as_strided detach detach_ contiguous expand expand_as unsqueeze squeeze t transpose permute
select slice narrow flatten unflatten view_as split split_with_sizes chunk unbind size stride numel dim
resize_ copy_ clone _to_copy to lift_fresh lift_fresh_copy item _local_scalar_dense is_nonzero
result_type set_ resolve_conj resolve_neg _has_compatible_shallow_copy_type is_same_size type_as
is_pinned record_stream
""".split())

#: Namespaces whose ops are bookkeeping, never compute (the profiler's markers).
IGNORED_NAMESPACES = ("profiler::",)


def computes(name: str, ext_namespace: str) -> bool:
    """Is the dispatched op `name` ("aten::add.Tensor") PyTorch computing something, rather than
    the candidate's own op (`ext_namespace`) or an op that allocates, views, copies or fills?
    The run check's judge and the child's compute block (serve.py) use this one rule."""
    if "::" not in name or name.startswith(ext_namespace + "::") or name.startswith(IGNORED_NAMESPACES):
        return False
    ns, base = name.split("::", 1)
    return not (ns == "aten" and base.split(".")[0] in TRIVIAL_ATEN)


#: Poison in every fresh buffer the candidate allocates, as (same-width integer dtype, bit
#: pattern): all bits set, a NaN in every floating dtype, so "never written" is recognisable.
#: glibc writes it into every malloc'd block in correctness calls (mallopt M_PERTURB, see
#: sandbox/programs/tripwires.py), the runner's dispatch mode into fresh tensors in replays.
POISON_BITS: dict[str, tuple[str, int]] = {
    "float32": ("int32", -1),
    "float64": ("int64", -1),
    "float16": ("int16", -1),
    "bfloat16": ("int16", -1),
}


def import_by_path(path: str | os.PathLike) -> ModuleType:
    """Import a Python file under a private name (the reference module, in either child).
    ImportError for a file that is not a module; the module's own errors propagate."""
    path = Path(path).resolve()
    name = f"kg_reference_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def seed_for(base: int, index: int) -> int:
    """Per-call seed derived from the trial's secret base seed (replayable from the base)."""
    digest = hashlib.sha256(f"{base}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_inputs(ref: Any, shape: list[int], dtype: str, seed: int, device: str) -> tuple:
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    inputs = ref.make_inputs(tuple(shape), dtype, gen)
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def flatten_outputs(result: Any) -> list:
    """A tensor, or a tuple/list of them, as a flat list (anything else kept as is)."""
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


__all__ = ["POISON_BITS", "flatten_outputs", "import_by_path", "make_inputs", "seed_for"]
