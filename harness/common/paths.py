"""Where kernelgrade keeps its state (DESIGN.md "Where state lives").

Everything is derived on call, never at import time, so tests can point
KERNELGRADE_HOME at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "kernelgrade"


def data_dir() -> Path:
    """Runs database and artifacts. KERNELGRADE_HOME overrides the platform default."""
    home = os.environ.get("KERNELGRADE_HOME")
    path = Path(home) if home else Path(platformdirs.user_data_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    home = os.environ.get("KERNELGRADE_HOME")
    return Path(home) if home else Path(platformdirs.user_config_dir(APP))


def cache_dir() -> Path:
    """Compile cache. KERNELGRADE_CACHE overrides (CI keeps one across runs)."""
    override = os.environ.get("KERNELGRADE_CACHE")
    path = Path(override) if override else Path(platformdirs.user_cache_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_path() -> Path:
    return data_dir() / "runs.sqlite"


def artifacts_dir(run_id: str, *, create: bool = True) -> Path:
    """The run's artifact folder; `create=False` for callers that make it only when needed."""
    path = data_dir() / "artifacts" / run_id
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root() -> Path:
    """The source checkout, where kernelgrade runs from one (tests and scripts use it). What the
    tool itself needs from kernels_reference/, skills/ and cases/ goes through `asset_dir`."""
    return Path(__file__).resolve().parents[2]


#: The folders kernelgrade ships: top-level in the checkout, package data (harness/_assets/NAME)
#: in an installed kernelgrade (setup.py maps them).
ASSETS = ("kernels_reference", "skills", "cases")


def asset_dir(name: str) -> Path:
    """kernels_reference/, skills/ or cases/: the checkout's own folder when kernelgrade runs from a
    checkout (an editable install included), else the copy installed inside the package."""
    if name not in ASSETS:
        raise ValueError(f"unknown asset folder {name!r} (one of {', '.join(ASSETS)})")
    package = Path(__file__).resolve().parents[1]  # harness/
    checkout = package.parent / name
    if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    return package / "_assets" / name


def shipped_path(path: Path, kind: str) -> Path:
    """`path` as given when it exists; else, when it names a shipped skill or case file
    (`skills/NAME` or `NAME`; `cases/NAME.json`, `NAME.json` or `NAME`), the shipped one, so the
    README's commands work from any folder with an installed kernelgrade. Else `path` unchanged."""
    path = Path(path)
    if path.exists() or kind not in ("skills", "cases"):
        return path
    parts = path.parts
    if len(parts) == 2 and parts[0] == kind:
        name = parts[1]
    elif len(parts) == 1:
        name = parts[0]
    else:
        return path
    if kind == "cases" and not name.endswith(".json"):
        name += ".json"
    candidate = asset_dir(kind) / name
    return candidate if candidate.exists() else path
