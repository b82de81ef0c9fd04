"""The check table: name -> function, imported lazily so `kernelgrade --help`
does not pay for torch or the kernels package.

Each entry is "module:function". A check whose module is not present yet is
reported as `skip (not available)`, never as a pass.
"""

from __future__ import annotations

import importlib

from harness.checks.base import CheckContext, CheckFn, GradeOptions

CHECKS: dict[str, str] = {
    "markers": "harness.checks.markers:check_markers",
    "build_toml": "harness.checks.build_toml:check_build_toml",
    "scan": "harness.checks.scan:check_scan",
    "compile": "harness.checks.compile:check_compile",
    "sass": "harness.checks.sass:check_sass",
    "run": "harness.checks.run:check_run",
    "speedup": "harness.checks.speedup:check_speedup",
}

#: A check runs only if these passed; otherwise it is `skip (blocked by X)`.
DEPENDS: dict[str, tuple[str, ...]] = {
    "compile": ("build_toml",),
    "sass": ("compile",),
    # scan: every case that runs a project also scans it, and a plain trick blocks the run.
    "run": ("compile", "scan"),
    "speedup": ("run",),
}


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
