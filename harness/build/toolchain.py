"""Find the tools a compile-only check needs and say which ones were used.

nvcc: PATH, then CUDA_HOME / CUDA_PATH, then the PyPI `nvidia-cuda-nvcc` package.
cuobjdump / nvdisasm: PATH, the CUDA home, then the PyPI `nvidia-cuda-cuobjdump` /
`nvidia-cuda-nvdisasm` packages (the CUDA 13 toolkit on these machines lacks them).
torch: found without importing it (importing torch costs seconds), for its include
dirs and version. Versions go into compile cache keys.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tool:
    """One executable and how it was found."""

    path: Path
    source: str
    """Where it came from: "PATH", "CUDA_HOME", "pypi:nvidia-cuda-nvcc", ..."""

    def describe(self) -> str:
        return f"{self.path} ({self.source})"


def _nvidia_pypi_dirs() -> list[Path]:
    """Folders of the `nvidia` namespace package (nvidia/cu13, nvidia/cuda_nvcc, ...)."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    dirs: list[Path] = []
    for base in spec.submodule_search_locations:
        base_path = Path(base)
        if base_path.is_dir():
            dirs.extend(sorted(p for p in base_path.iterdir() if p.is_dir()))
    return dirs


def _find(name: str, pypi_label: str) -> Tool | None:
    on_path = shutil.which(name)
    if on_path:
        return Tool(Path(on_path), "PATH")
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin" / name).is_file():
            return Tool(Path(home) / "bin" / name, var)
    for folder in _nvidia_pypi_dirs():
        candidate = folder / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Tool(candidate, f"pypi:{pypi_label}")
    return None


def find_nvcc() -> Tool | None:
    return _find("nvcc", "nvidia-cuda-nvcc")


def find_cuobjdump() -> Tool | None:
    return _find("cuobjdump", "nvidia-cuda-cuobjdump")


def find_nvdisasm() -> Tool | None:
    return _find("nvdisasm", "nvidia-cuda-nvdisasm")


def find_cxx() -> Tool | None:
    """The host C++ compiler for the torch binding (.cpp), as the builder uses."""
    env = os.environ.get("CXX")
    if env and shutil.which(env):
        return Tool(Path(shutil.which(env)), "CXX")
    for name in ("c++", "g++", "clang++"):
        if found := shutil.which(name):
            return Tool(Path(found), "PATH")
    return None


@lru_cache(maxsize=16)
def tool_version(path: Path) -> str:
    """The last non-empty line of `TOOL --version` (e.g. "Build cuda_13.0.r13.0/..."),
    which names the exact build; '' when the tool cannot say."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    keep = [ln for ln in lines if re.search(r"\d+\.\d+\.\d+|release \d+", ln) or ln.startswith("Build")]
    return " | ".join(keep[:3])


def release_of(version_text: str) -> str:
    """"13.0" out of nvcc's version text."""
    m = re.search(r"release (\d+\.\d+)", version_text)
    return m.group(1) if m else ""


@lru_cache(maxsize=4)
def cuda_home_of(nvcc: Path) -> Path | None:
    """The toolkit root nvcc really runs from (a PATH entry may be a wrapper script),
    read from `nvcc --dryrun`'s TOP variable."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cu"
        src.write_text("")
        try:
            out = subprocess.run([str(nvcc), "--dryrun", "-c", str(src), "-o", str(Path(tmp) / "p.o")],
                                 capture_output=True, text=True, timeout=60, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired):
            return None
    m = re.search(r"^#\$ TOP=(.+)$", out.stderr + out.stdout, re.MULTILINE)
    if not m:
        return None
    return Path(m.group(1).strip()).resolve()


def cuda_include_dirs(nvcc: Path) -> list[Path]:
    """Where cuda_runtime.h lives, for host-compiler builds that include CUDA headers."""
    home = cuda_home_of(nvcc)
    if home is None:
        return []
    dirs = [home / "include", home / "targets" / "x86_64-linux" / "include"]
    return [d for d in dirs if (d / "cuda_runtime.h").is_file()][:1]


@dataclass(frozen=True)
class TorchInfo:
    version: str
    include_dirs: tuple[Path, ...]
    cxx_std: str = "c++17"
    """What ATen.h demands of the compiler: torch 2.14 refuses anything below C++20."""
    cuda: bool = False
    """A CUDA build (libtorch_cuda present): it links and loads CUDA extensions, GPU or not."""
    cuda_version: str = ""
    """The CUDA release torch was built with ("13.0"), from torch/version.py."""

    @property
    def lib_dir(self) -> Path:
        return self.include_dirs[0].parent / "lib"


def required_cxx_std(include_dir: Path) -> str:
    """Read the standard from ATen.h's own `__cplusplus <` guard, so a newer torch that
    raises it keeps compiling (torch.utils.cpp_extension tracks it the same way)."""
    try:
        text = (include_dir / "ATen" / "ATen.h").read_text(errors="replace")
    except OSError:
        return "c++17"
    m = re.search(r"__cplusplus\s*<\s*(\d{4})\d\dL", text)
    year = max(int(m.group(1)) if m else 2017, 2017)
    return f"c++{year % 100:02d}"


@lru_cache(maxsize=1)
def torch_info() -> TorchInfo | None:
    """torch's headers and version, without importing torch."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    include = root / "include"
    if not include.is_dir():
        return None
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    try:
        m = re.search(r"^cuda\b.*=\s*'([\d.]+)'", (root / "version.py").read_text(), re.MULTILINE)
    except OSError:
        m = None
    return TorchInfo(version=version, include_dirs=(include, include / "torch" / "csrc" / "api" / "include"),
                     cxx_std=required_cxx_std(include), cuda=(root / "lib" / "libtorch_cuda.so").is_file(),
                     cuda_version=m.group(1) if m else "")


def python_include_dir() -> Path:
    """Python.h: registration.h includes it (the extension is a Python module)."""
    return Path(sysconfig.get_paths()["include"])


def describe() -> dict[str, str]:
    """Which tools a compile would use, for reports and provenance."""
    out: dict[str, str] = {}
    for label, tool in (("nvcc", find_nvcc()), ("cuobjdump", find_cuobjdump()),
                        ("nvdisasm", find_nvdisasm()), ("cxx", find_cxx())):
        out[label] = f"{tool.describe()} {tool_version(tool.path)}" if tool else "not found"
    info = torch_info()
    out["torch"] = f"{info.version} ({info.include_dirs[0]})" if info else "not found"
    return out


__all__ = [
    "Tool", "TorchInfo", "cuda_home_of", "cuda_include_dirs", "describe", "find_cuobjdump",
    "find_cxx", "find_nvcc", "find_nvdisasm", "python_include_dir", "release_of", "required_cxx_std", "tool_version",
    "torch_info",
]
