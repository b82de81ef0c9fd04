"""cuBLAS / cuSPARSE / cuSOLVER headers for compiling torch-binding .cu files.

torch's ATen/cuda headers include cublas_v2.h, cusparse.h and cusolverDn.h; the
CUDA 13 toolkit on CPU machines often lacks them, and the PyPI wheels that carry
them install ~1 GB of libraries. We download the pinned wheels with pip and keep
only their `nvidia/cu13/include/` folders (a few MB) in the cache dir.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from harness.common.paths import cache_dir

log = logging.getLogger(__name__)

#: CUDA 13.0 releases of the math libraries (nvcc 13.0 is the toolkit we compile with).
HEADER_WHEELS: dict[str, str] = {
    "nvidia-cublas": "13.0.2.14",
    "nvidia-cusparse": "12.6.3.3",
    "nvidia-cusolver": "12.0.4.66",
}
#: A header each wheel must provide; its presence means the folder is usable.
MARKERS = ("cublas_v2.h", "cusparse.h", "cusolverDn.h")
_PREFIX = "nvidia/cu13/include/"


def pins_key() -> str:
    text = ",".join(f"{k}=={v}" for k, v in sorted(HEADER_WHEELS.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_dir() -> Path:
    """<cache>/cuda-headers/<pins hash>/include: changes when the pins change."""
    return cache_dir() / "cuda-headers" / pins_key() / "include"


def _complete(folder: Path) -> bool:
    return all((folder / m).is_file() for m in MARKERS)


def find_math_headers(extra: list[Path] | None = None) -> Path | None:
    """A folder holding all of MARKERS: an installed wheel, the toolkit, or our cache."""
    candidates: list[Path] = list(extra or [])
    try:
        import importlib.util

        spec = importlib.util.find_spec("nvidia")
        for base in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(Path(base) / "cu13" / "include")
    except (ImportError, ValueError):
        pass
    try:  # a full toolkit (the usual GPU node) has them beside cuda_runtime.h
        from harness.build.toolchain import cuda_include_dirs, find_nvcc

        nvcc = find_nvcc()
        candidates += cuda_include_dirs(nvcc.path) if nvcc else []
    except OSError:
        pass
    candidates.append(default_dir())
    return next((c for c in candidates if _complete(c)), None)


def _extract_includes(wheel: Path, dest: Path) -> int:
    """Copy only members under nvidia/cu13/include/ into dest; returns the file count."""
    count = 0
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(_PREFIX):
                continue
            rel = Path(info.filename[len(_PREFIX):])
            if rel.is_absolute() or ".." in rel.parts:  # never trust archive paths
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    return count


def install_headers(dest: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """Download the pinned wheels (no deps, binary only), keep their include/ folders.

    Idempotent: returns at once when dest already holds the headers. The wheels are
    deleted after extraction. Raises RuntimeError with pip's message on failure.
    """
    dest = dest or default_dir()
    if _complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kg-wheels-", dir=dest.parent) as tmp:
        specs = [f"{name}=={version}" for name, version in HEADER_WHEELS.items()]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, *specs]
        log.info("downloading header wheels: %s", " ".join(specs))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError("pip download of CUDA header wheels failed: " + " / ".join(tail))
        staging = Path(tmp) / "include"
        files = sum(_extract_includes(w, staging) for w in sorted(Path(tmp).glob("*.whl")))
        if not _complete(staging):
            raise RuntimeError(f"header wheels lacked {MARKERS} under {_PREFIX}")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)  # same filesystem: atomic, so a half copy is never seen
        log.info("installed %d header files into %s", files, dest)
    return dest


def ensure_math_headers() -> Path:
    """Find the headers or install them into the cache (network to PyPI needed once)."""
    return find_math_headers() or install_headers()


__all__ = ["HEADER_WHEELS", "default_dir", "ensure_math_headers", "find_math_headers", "install_headers"]
