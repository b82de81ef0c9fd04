"""Find and load a reference module (DESIGN.md contract "References").

A reference.py exports API, reference(*args), make_inputs(shape, dtype, generator),
SHAPES, DTYPES, bytes_moved(shape, dtype) and flops(shape, dtype); optionally
TEST_SHAPES (small shapes for CPU runs and CI), TOLERANCE {dtype: (atol, rtol)}
and TORCH_OPS (aten op names the kernel replaces, e.g. ["aten::rms_norm"]).

The harness process only resolves the path and reads plain attributes; the
reference is *executed* for outputs and timing in sandbox/programs/reference_child.py.
"""

from __future__ import annotations

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
    return module


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


__all__ = ["DEFAULT_TOLERANCE", "load_reference_module", "op_reference_path", "op_name_of",
           "resolve_reference_path", "tolerance"]
