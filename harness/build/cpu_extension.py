"""Build a project's `backend = "cpu"` kernels into a loadable torch extension.

Imitates kernel-builder for the CPU backend: every CPU kernel source plus the
[torch] binding sources are compiled with g++ against the installed torch, with
`-DCPU_KERNEL` and `-DTORCH_EXTENSION_NAME=_<name>_cpu_<hash>`; the builder's
`registration.h` is on the include path; the result is a package folder
(a copy of torch-ext/<name>/, the .so and a generated `_ops.py`) that the runner
child imports. Builds are cached by content and the compiler runs in sandbox/.
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.build.builder_files import REGISTRATION_H, extension_name, ops_py
from harness.build.cache import BuildCache, content_key, read_tree
from harness.build.toolchain import required_cxx_std
from harness.project.info import ProjectInfo
from harness.project.sources import backend_units
from sandbox.limits import Limits
from sandbox.run import run_sandboxed

log = logging.getLogger(__name__)

#: Bump when the build recipe changes, so old cache entries are not reused.
RECIPE_VERSION = 1
NO_CPU_KERNEL = "no CPU kernel in build.toml"


@dataclass(frozen=True)
class CpuBuild:
    ok: bool
    so_path: Path | None
    """The built extension (inside package_dir)."""
    package_dir: Path | None
    """The importable package folder; its parent goes on sys.path."""
    log: str
    """Compiler output (tail)."""
    reason: str
    """One line: why it failed, or "built" / "cached"."""
    cache_hit: bool = False
    ext_name: str = ""
    """The torch op namespace the binding registers (`_<name>_cpu_<hash>`)."""
    log_path: Path | None = None


@lru_cache(maxsize=1)
def _toolchain() -> dict[str, object]:
    """Compiler and torch facts that go into the cache key and the command line."""
    import torch
    from torch.utils import cpp_extension

    cxx = shutil.which("g++") or shutil.which("c++") or "g++"
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
        version = version.splitlines()[0] if version else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        version = "unknown"
    return {
        "cxx": cxx,
        "cxx_version": version,
        "torch": torch.__version__,
        "abi": int(torch._C._GLIBCXX_USE_CXX11_ABI),
        "includes": cpp_extension.include_paths(),
        "cxx_std": required_cxx_std(Path(cpp_extension.include_paths()[0])),
        "libdirs": cpp_extension.library_paths(),
        "python_include": sysconfig.get_paths()["include"],
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }


def _flags(ext: str, project: ProjectInfo, tc: dict, include_dir: str) -> list[str]:
    flags = ["-O3", f"-std={tc['cxx_std']}", "-fPIC", "-shared", "-fopenmp", "-DCPU_KERNEL",
             f"-DTORCH_EXTENSION_NAME={ext}", f"-D_GLIBCXX_USE_CXX11_ABI={tc['abi']}",
             "-I", include_dir, "-I", "src", "-I", "src/torch-ext"]
    for kernel in project.kernels_for("cpu"):
        flags += kernel.cxx_flags
        for inc in kernel.include:
            flags += ["-I", f"src/{inc}"]
    for inc in tc["includes"]:
        flags += ["-isystem", inc]
    flags += ["-isystem", str(tc["python_include"])]
    for libdir in tc["libdirs"]:
        flags += ["-L", libdir, f"-Wl,-rpath,{libdir}"]
    flags += ["-lc10", "-ltorch", "-ltorch_cpu", "-ltorch_python"]
    return flags


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if re.search(r"\berror\b", line):
            return line.strip()[:300]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else "no output"


def _fail(reason: str, log_text: str = "", log_path: Path | None = None) -> CpuBuild:
    return CpuBuild(ok=False, so_path=None, package_dir=None, log=log_text, reason=reason,
                    log_path=log_path)


def build_cpu_extension(project: ProjectInfo, *, artifacts: Path, sandbox: str = "auto",
                        timeout_s: float = 600) -> CpuBuild:
    """Compile the CPU kernels of `project`; never raises for the project's faults."""
    if not project.kernels_for("cpu"):
        return _fail(NO_CPU_KERNEL)
    if not project.has_torch:
        return _fail("build.toml: no [torch] section, nothing binds the CPU kernels to torch")
    sources = backend_units(project, "cpu")
    missing = [s for s in sources if not (project.root / s).is_file()]
    if missing:
        return _fail(f"source listed in build.toml does not exist: {missing[0]}")
    if not sources:
        return _fail("no C++ source (.cpp/.cc/.cxx/.c) among the CPU kernel and [torch] sources")
    pkg_src = project.python_package_dir
    if not (pkg_src / "__init__.py").is_file():
        rel = pkg_src.relative_to(project.root)
        return _fail(f"{rel}/__init__.py missing: no Python package to load the extension from")

    tc = _toolchain()
    files = read_tree(project.root)
    base_key = content_key(files=files, recipe=RECIPE_VERSION, toolchain=tc, sources=sources)
    ext = extension_name(project.name, "cpu", base_key)
    pkg_name = pkg_src.name
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = artifacts / "build_cpu.log"

    def build(tmp: Path) -> bool:
        shutil.copytree(project.root, tmp / "src", symlinks=False,
                        ignore=shutil.ignore_patterns("build", "__pycache__", "*.so"))
        include_dir = tmp / "kg_include"
        include_dir.mkdir()
        (include_dir / "registration.h").write_text(REGISTRATION_H)
        pkg = tmp / "pkg" / pkg_name
        shutil.copytree(tmp / "src" / pkg_src.relative_to(project.root), pkg)
        (pkg / "_ops.py").write_text(ops_py(ext))
        so = pkg / f"{ext}.so"
        cmd = [str(tc["cxx"]), *[f"src/{s}" for s in sources],
               *_flags(ext, project, tc, "kg_include"), "-o", str(so.relative_to(tmp))]
        ro = tuple(Path(p) for p in [*tc["includes"], *tc["libdirs"], tc["python_include"]])
        result = run_sandboxed(cmd, cwd=tmp, backend=sandbox, ro_paths=ro,
                               limits=Limits(wall_s=timeout_s, cpu_s=int(timeout_s * 2) + 60,
                                             memory_mb=6144, nproc=512))
        text = "$ " + " ".join(cmd) + "\n" + result.stdout + result.stderr
        if result.timed_out:
            text += f"\n[kernelgrade] compiler killed after {timeout_s:g} s\n"
        (tmp / "build.log").write_text(text)
        return result.ok and so.is_file()

    entry, hit, log_text = BuildCache("cpu_ext").build_logged(base_key, build, "build.log")
    log_path.write_text(log_text)
    if entry is None:
        if "killed after" in log_text:
            reason = f"g++ timed out after {timeout_s:g} s"
        else:
            reason = f"g++ failed: {_first_error(log_text.split(chr(10), 1)[-1])}"
        return _fail(reason, log_text[-20000:], log_path)
    pkg = entry / "pkg" / pkg_name
    return CpuBuild(ok=True, so_path=pkg / f"{ext}.so", package_dir=pkg, log=log_text[-20000:],
                    reason="cached" if hit else "built", cache_hit=hit, ext_name=ext,
                    log_path=log_path)


__all__ = ["CpuBuild", "NO_CPU_KERNEL", "build_cpu_extension"]
