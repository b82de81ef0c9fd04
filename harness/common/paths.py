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
    """The source checkout (kernels_reference/, skills/, cases/ live here)."""
    return Path(__file__).resolve().parents[2]
