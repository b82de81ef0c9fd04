"""Header-only installs from pinned PyPI wheels, for compile-only checks.

- cuBLAS / cuSPARSE / cuSOLVER, for torch-binding .cu files: torch's ATen/cuda headers
  include cublas_v2.h, cusparse.h and cusolverDn.h; the CUDA 13 toolkit on CPU machines
  often lacks them, and the PyPI wheels that carry them install ~1 GB of libraries. We
  download the pinned wheels with pip and keep only their `nvidia/cu13/include/` folders
  (a few MB) in the cache dir.
- tvm-ffi (apache-tvm-ffi), for [tvm-ffi] projects: `tvm/ffi/*.h` and `dlpack/dlpack.h`
  from the wheel's `tvm_ffi/include/` (what `python -m tvm_ffi.config --includedir` names).
- CUTLASS, for kernels that `depends` on cutlass_3_5 / 3_6 / 3_8: the include/ folder of the
  nvidia-cutlass wheel at the release kernel-builder fetches from GitHub.

Each folder is keyed by its pins (a pin change is a new folder), written atomically, and
found again without the network: `scripts/install_headers.py` (run by setup.sh) fills the
cache once; offline, pip can take the wheels from KG_WHEELHOUSE.
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


def _extract_includes(wheel: Path, dest: Path, prefix: str = _PREFIX) -> int:
    """Copy only members under `prefix` (nvidia/cu13/include/) into dest; returns the file count."""
    count = 0
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            rel = Path(info.filename[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:  # never trust archive paths
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    return count


def _pip_source() -> list[str]:
    """KG_WHEELHOUSE (a folder of wheels, scripts/wheelhouse.py) makes the download offline."""
    house = os.environ.get("KG_WHEELHOUSE", "").strip()
    return ["--no-index", "--find-links", house] if house else []


def _install_wheel_includes(specs: list[str], prefix: str, markers: tuple[str, ...], dest: Path, *,
                            target: list[str] = (), timeout_s: float = 900.0) -> Path:
    """Download `specs` (no deps, binary only), keep only the members under `prefix`, and
    move them into `dest` at once. Idempotent; RuntimeError with pip's message on failure."""
    done = lambda folder: all((folder / m).is_file() for m in markers)  # noqa: E731
    if done(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kg-wheels-", dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", *_pip_source(), *target, "-d", tmp, *specs]
        log.info("downloading header wheels: %s", " ".join(specs))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"pip download of {' '.join(specs)} failed: " + " / ".join(tail))
        staging = Path(tmp) / "include"
        files = sum(_extract_includes(w, staging, prefix) for w in sorted(Path(tmp).glob("*.whl")))
        if not done(staging):
            raise RuntimeError(f"{' '.join(specs)}: no {markers} under {prefix}")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)  # same filesystem: atomic, so a half copy is never seen
        log.info("installed %d header files into %s", files, dest)
    return dest


def install_headers(dest: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """The CUDA math headers: the pinned wheels' nvidia/cu13/include/ folders (the wheels
    themselves are deleted). Idempotent: returns at once when dest already holds them."""
    specs = [f"{name}=={version}" for name, version in HEADER_WHEELS.items()]
    return _install_wheel_includes(specs, _PREFIX, MARKERS, dest or default_dir(), timeout_s=timeout_s)


def ensure_math_headers() -> Path:
    """Find the headers or install them into the cache (network to PyPI needed once)."""
    return find_math_headers() or install_headers()


# ---------------------------------------------------------------- tvm-ffi

#: The apache-tvm-ffi release kernel-builder pins for [tvm-ffi] projects (its nix/uv lock).
TVM_FFI_WHEEL: tuple[str, str] = ("apache-tvm-ffi", "0.1.9")
#: Headers that make the folder usable: the FFI itself, its CUDA helpers, DLPack.
TVM_FFI_MARKERS = ("tvm/ffi/tvm_ffi.h", "tvm/ffi/extra/c_env_api.h", "dlpack/dlpack.h")
_TVM_FFI_PREFIX = "tvm_ffi/include/"
#: One wheel for every host (the headers are the same in all of them): CPython 3.12 abi3, manylinux.
_TVM_FFI_TARGET = ["--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                   "--platform", "manylinux_2_24_x86_64", "--platform", "manylinux_2_17_x86_64"]


def tvm_ffi_version() -> str:
    return TVM_FFI_WHEEL[1]


def tvm_ffi_dir() -> Path:
    """<cache>/tvm-ffi-headers/<pin hash>/include."""
    pin = "==".join(TVM_FFI_WHEEL)
    return cache_dir() / "tvm-ffi-headers" / hashlib.sha256(pin.encode()).hexdigest()[:12] / "include"


def find_tvm_ffi_headers() -> Path | None:
    """Our cache's copy of the pinned release. An installed tvm_ffi package is not used: its
    version is whatever the host has, and the pin is what the compile cache is keyed on."""
    folder = tvm_ffi_dir()
    return folder if all((folder / m).is_file() for m in TVM_FFI_MARKERS) else None


def install_tvm_ffi_headers(dest: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """The pinned apache-tvm-ffi wheel's tvm_ffi/include/ (~1 MB of headers) into the cache."""
    return _install_wheel_includes(["==".join(TVM_FFI_WHEEL)], _TVM_FFI_PREFIX, TVM_FFI_MARKERS,
                                   dest or tvm_ffi_dir(), target=_TVM_FFI_TARGET, timeout_s=timeout_s)


def ensure_tvm_ffi_headers() -> Path:
    return find_tvm_ffi_headers() or install_tvm_ffi_headers()


# ---------------------------------------------------------------- CUTLASS

#: kernel-builder's CUTLASS dependencies (kernel-builder/src/pyproject/deps.rs) that PyPI's
#: nvidia-cutlass carries at the same release; the others (cutlass_2_10, 3_9, 4_x) stay unsupplied.
CUTLASS_WHEELS: dict[str, str] = {"cutlass_3_5": "3.5.1.0", "cutlass_3_6": "3.6.0.0", "cutlass_3_8": "3.8.0.0"}
CUTLASS_MARKERS = ("cutlass/cutlass.h", "cutlass/gemm/device/gemm.h", "cute/tensor.hpp")
_CUTLASS_PREFIX = "cutlass_library/source/include/"


def cutlass_dir(dep: str) -> Path:
    """<cache>/cutlass-headers/<release>/include: CUTLASS_INCLUDE_DIR as CUTLASS's CMake sets it."""
    return cache_dir() / "cutlass-headers" / CUTLASS_WHEELS[dep] / "include"


def find_cutlass_headers(dep: str) -> Path | None:
    folder = cutlass_dir(dep)
    return folder if all((folder / m).is_file() for m in CUTLASS_MARKERS) else None


def ensure_cutlass_headers(dep: str, *, timeout_s: float = 900.0) -> Path:
    """The include/ folder of nvidia-cutlass at `dep`'s release (a pure-Python wheel, ~4.5 MB)."""
    return find_cutlass_headers(dep) or _install_wheel_includes(
        [f"nvidia-cutlass=={CUTLASS_WHEELS[dep]}"], _CUTLASS_PREFIX, CUTLASS_MARKERS, cutlass_dir(dep),
        timeout_s=timeout_s)


__all__ = ["CUTLASS_WHEELS", "HEADER_WHEELS", "TVM_FFI_WHEEL", "cutlass_dir", "ensure_cutlass_headers",
           "find_cutlass_headers", "default_dir", "ensure_math_headers", "ensure_tvm_ffi_headers",
           "find_math_headers", "find_tvm_ffi_headers", "install_headers", "install_tvm_ffi_headers", "tvm_ffi_dir",
           "tvm_ffi_version"]
