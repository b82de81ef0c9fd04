"""Find and load a reference module (DESIGN.md contract "References").

A reference.py exports API, reference(*args), make_inputs(shape, dtype, generator),
SHAPES, DTYPES, bytes_moved(shape, dtype) and flops(shape, dtype); optionally
TEST_SHAPES (small shapes for CPU runs and CI), TOLERANCE {dtype: (atol, rtol)}
and TORCH_OPS (aten op names the kernel replaces, e.g. ["aten::rms_norm"]).

DTYPES may hold torch dtypes or their names; TOLERANCE may be keyed by either. The harness
hands make_inputs, bytes_moved and flops a torch.dtype (one that fails with it is asked again
with the name, as references written for names expect), and names dtypes ("float32")
everywhere else. A reference that fails while making inputs or counting is the user's error (UserError
naming the file and the call), never an internal error.

The harness process only resolves the path and reads plain attributes; the
reference is *executed* for outputs and timing in sandbox/programs/reference_child.py.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

from harness.common.errors import UserError
from harness.common.paths import asset_dir
from sandbox.programs.child_common import import_by_path

REQUIRED = ("API", "reference", "make_inputs", "SHAPES", "DTYPES", "bytes_moved", "flops")
DEFAULT_TOLERANCE = {"float32": (1e-4, 1e-4), "float64": (1e-7, 1e-7),
                     "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}


def reference_dir() -> Path:
    """kernels_reference/ (the checkout's, or the copy an installed kernelgrade ships)."""
    return asset_dir("kernels_reference")


def op_reference_path(op: str) -> Path:
    """kernels_reference/<op>/reference.py, or UserError naming the op."""
    path = reference_dir() / op / "reference.py"
    if not path.is_file():
        raise UserError(f"--op {op}: no kernels_reference/{op}/reference.py")
    return path


def resolve_reference_path(*, explicit: Path | None, op: str | None,
                           project_dir: Path | None, case_reference: str | None = None) -> Path | None:
    """--reference FILE, else the case's own reference file, else the case's / --op's
    kernels_reference/<op>, else a reference.py at the project root; None when there is none."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise UserError(f"--reference {explicit}: no such file")
        return Path(explicit)
    if case_reference is not None:
        if not Path(case_reference).is_file():
            raise UserError(f"the case's reference {case_reference}: no such file")
        return Path(case_reference)
    if op:
        return op_reference_path(op)
    if project_dir is not None and (project_dir / "reference.py").is_file():
        return project_dir / "reference.py"
    return None


def load_reference_module(path: Path) -> ModuleType:
    """Import a reference.py by path under a private name and check the contract."""
    path = Path(path).resolve()
    try:
        module = import_by_path(path)
    except ImportError as err:
        raise UserError(str(err)) from None
    except Exception as err:
        raise UserError(f"{path}: import failed: {type(err).__name__}: {err}") from None
    missing = [a for a in REQUIRED if not hasattr(module, a)]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (reference contract)")
    module.DTYPES = [dtype_name(d) for d in module.DTYPES]
    if isinstance(getattr(module, "TOLERANCE", None), dict):
        module.TOLERANCE = {dtype_name(k): v for k, v in module.TOLERANCE.items()}
    for name in ("make_inputs", "bytes_moved", "flops"):
        setattr(module, name, _called_as_contract(path, name, getattr(module, name)))
    return module


def dtype_name(dtype: object) -> str:
    """"float32" for torch.float32, "torch.float32" or "float32"."""
    return str(dtype).removeprefix("torch.")


def _as_torch_dtype(dtype: object) -> object:
    import torch

    found = getattr(torch, dtype_name(dtype), None) if isinstance(dtype, str) else dtype
    return found if isinstance(found, torch.dtype) else dtype


def _called_as_contract(path: Path, name: str, fn):
    """`fn(shape, dtype, ...)` given a torch.dtype whatever the harness holds, its failure a UserError."""
    if getattr(fn, "__kg_contract__", False):
        return fn

    @functools.wraps(fn)
    def call(shape, dtype, *rest, **kwargs):
        try:
            return fn(shape, _as_torch_dtype(dtype), *rest, **kwargs)
        except Exception as err:  # the reference's own fault, said as the user's error
            first = err
        try:  # a reference written for dtype names (getattr(torch, dtype)) keeps working
            return fn(shape, dtype_name(dtype), *rest, **kwargs)
        except Exception:
            raise UserError(f"reference {path}: {name}({tuple(shape)}, {dtype_name(dtype)}) raised "
                            f"{type(first).__name__}: {first}") from None

    call.__kg_contract__ = True  # type: ignore[attr-defined]
    return call


def tolerance(module: ModuleType, dtype: str, atol: float | None = None,
              rtol: float | None = None) -> tuple[float, float]:
    """The case's atol/rtol where given, else the reference's TOLERANCE, else the default."""
    table = dict(DEFAULT_TOLERANCE)
    table.update(getattr(module, "TOLERANCE", {}) or {})
    d_atol, d_rtol = table.get(dtype, (1e-4, 1e-4))
    return (d_atol if atol is None else atol, d_rtol if rtol is None else rtol)


def op_name_of(path: Path) -> str:
    """The op a reference belongs to: its folder name (kernels_reference/<op>/reference.py)."""
    return Path(path).resolve().parent.name


__all__ = ["DEFAULT_TOLERANCE", "dtype_name", "load_reference_module", "op_reference_path", "op_name_of",
           "resolve_reference_path", "tolerance"]
