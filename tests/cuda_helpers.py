"""Shared helpers for the compile/SASS tests: tiny kernel-builder projects made from
the fixture .cu files in tests/fixtures/cuda/ (fixtures, not model answers).

Compiles go through the real cache (KERNELGRADE_CACHE if set, else the user cache),
keyed by content, so a second test run reuses them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


FIXTURES = Path(__file__).parent / "fixtures" / "cuda"

#: nvcc is a prerequisite like the others: missing in CI is a failure, elsewhere a skip (tests/prereq.py).
needs_nvcc = pytest.mark.usefixtures("require_nvcc")


def kernel_project(root: Path, sources: list[str], *, caps: list[str] | None = None,
                   flags: list[str] | None = None, name: str = "fixture") -> Path:
    """A kernel-only project (no [torch] section, so no torch headers: ~1 s compiles)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "k").mkdir(exist_ok=True)
    for src in sources:
        shutil.copyfile(FIXTURES / src, root / "k" / src)
    lines = ["[general]", f'name = "{name}"', "version = 1", "edition = 5", 'license = "MIT"',
             'backends = ["cuda"]', "", f"[kernel.{name}]", 'backend = "cuda"', 'depends = []',
             "src = [" + ", ".join(f'"k/{s}"' for s in sources) + "]"]
    if caps is not None:
        lines.append("cuda-capabilities = [" + ", ".join(f'"{c}"' for c in caps) + "]")
    if flags is not None:
        lines.append("cuda-flags = [" + ", ".join(f'"{f}"' for f in flags) + "]")
    (root / "build.toml").write_text("\n".join(lines) + "\n")
    return root


def context(project: Path, artifacts: Path, *, case=None, device: str = "cuda"):
    from harness.checks.base import CheckContext

    return CheckContext(case=case, text="", project_dir=project, level="compile", device=device,  # type: ignore[arg-type]
                        artifacts=artifacts)
