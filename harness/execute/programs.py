"""The sandbox's programs as the children see them: a copy of the `sandbox` package alone.

A child gets this folder on its PYTHONPATH, never the checkout: the checkout holds the
harness, other runs' files and maybe a .env, none of which the candidate should reach.
The copy is keyed by content, so it is made once per kernelgrade version.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import sandbox
from harness.common.paths import cache_dir


def _sources() -> list[Path]:
    root = Path(sandbox.__file__).resolve().parent
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def programs_root() -> Path:
    """A folder holding only `sandbox/` (its .py files); put it on the child's PYTHONPATH."""
    root = Path(sandbox.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    target = cache_dir() / "programs" / digest.hexdigest()[:16]
    if (target / "sandbox" / "__init__.py").is_file():
        return target
    staging = target.with_name(target.name + f".tmp{id(target)}")
    shutil.rmtree(staging, ignore_errors=True)
    for path in _sources():
        dest = staging / "sandbox" / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    try:
        staging.rename(target)
    except OSError:  # another process staged the same content first
        shutil.rmtree(staging, ignore_errors=True)
    return target


__all__ = ["programs_root"]
