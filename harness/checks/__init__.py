"""The check table: name -> function, imported lazily so `kernelgrade --help`
does not pay for torch or the kernels package.

The table itself is harness/common/check_table.py; this maps names to functions. A check whose module is not present yet is
reported as `skip (not available)`, never as a pass.
"""

from __future__ import annotations

import importlib

from harness.checks.base import CheckContext, CheckFn, GradeOptions
from harness.common.check_table import CHECK_TABLE, DEPENDS

CHECKS: dict[str, str] = {s.name: s.function for s in CHECK_TABLE}


def get_check(name: str) -> CheckFn | None:
    """The check function, or None when its module is not installed/written yet."""
    target = CHECKS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return None
        raise
    return getattr(module, func_name)


__all__ = ["CHECKS", "DEPENDS", "CheckContext", "CheckFn", "GradeOptions", "get_check"]
