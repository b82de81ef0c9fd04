"""Compile-only builds of a kernel-builder project's CUDA sources, the way the builder
would: flags from build.toml per capability, registration.h supplied by us, every
compile through the sandbox and the content-addressed cache.

One compile unit is one source file. Its cache entry holds the object, the full log
and `result.json` (ptxas statistics, first errors). Deterministic compile errors are
cached too (so a warm re-check of a broken project is instant); timeouts and
killed compilers are not (they may pass next time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from harness.build.builder_files import REGISTRATION_H, THC_SHIMS, supplied_headers
from harness.build.cache import BuildCache, content_key
from harness.build.nvcc_output import (
    CompileError,
    KernelStats,
    first_errors,
    parse_ptxas,
)
from sandbox.limits import Limits
from sandbox.run import run_sandboxed

log = logging.getLogger(__name__)

#: Bump when the way we build changes, so old cache entries are not reused.
SCHEME_VERSION = 2  # 2: build.toml flags, builder defines on every unit, stable ABI, tvm-ffi
#: Files copied into the build workspace (and hashed into the key): what a compile can read.
#: A torch-binding .cu needs ~3 GB of compiler memory (REFERENCE §5).
GB_PER_COMPILE = 3

# Flags kernel-builder passes for every CUDA kernel (a CMake Release build, C++17).
# torch's own extension flags define __CUDA_NO_HALF_OPERATORS__ and friends; the
# builder removes them, and we never add them, so half/bfloat operators work.
# find_package(Torch) appends --expt-relaxed-constexpr and --expt-extended-lambda to
# CMAKE_CUDA_FLAGS (torch/share/cmake/Caffe2/public/cuda.cmake); torch's own
# ATen/native/cuda headers need the second (kernels-community's rotary includes them).
NVCC_BASE = ["-std=c++17", "-O3", "-DNDEBUG", "--expt-relaxed-constexpr", "--expt-extended-lambda",
             "-Xcompiler", "-fPIC"]
#: A [tvm-ffi] extension gets none of torch's nvcc flags (no relaxed constexpr, no ENABLE_FP8).
NVCC_BASE_TVM_FFI = ["-std=c++17", "-O3", "-DNDEBUG", "-Xcompiler", "-fPIC"]
#: Per-kernel statistics: registers, shared memory, spills (parsed below).
NVCC_STATS = ["-Xptxas", "-v"]
CXX_BASE = ["-std=c++17", "-O3", "-DNDEBUG", "-fPIC"]
#: Compiling against the CPU torch wheel's CUDA headers (REFERENCE §5); and the
#: extension is a limited-API Python module as the builder makes it.
TORCH_DEFINES = ["-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE", "-DPy_LIMITED_API=0x03090000"]
_HALF_DEFINES = re.compile(r"^-D__CUDA_NO_(HALF|BFLOAT16)\w*__(=.*)?$")

H100_ARCHES = ("sm_90", "sm_90a")


def strip_half_defines(flags: list[str]) -> list[str]:
    """Drop `-D__CUDA_NO_HALF_OPERATORS__` and friends, as kernel-builder does."""
    return [f for f in flags if not _HALF_DEFINES.match(f)]


# ---------------------------------------------------------------- ptxas statistics


# ---------------------------------------------------------------- errors


# ---------------------------------------------------------------- units and results

Compiler = Literal["nvcc", "cxx"]


@dataclass
class CompileUnit:
    """One source to compile. `flags` exclude -c/-o and the source; include dirs inside
    the workspace are relative (src/, kg_include/), outside ones absolute."""

    rel: str
    """Source path relative to the project root."""
    compiler: Compiler
    flags: list[str]
    kind: Literal["kernel", "binding"]
    kernel: str
    """The [kernel.<name>] table, or "torch" / "tvm-ffi" for the binding."""
    arches: list[str] = field(default_factory=list)

    @property
    def object_name(self) -> str:
        return re.sub(r"[^0-9A-Za-z_.-]", "_", self.rel) + ".o"

    def command(self, tool: Path, src_prefix: str = "src") -> list[str]:
        return [str(tool), *self.flags, "-c", f"{src_prefix}/{self.rel}", "-o", self.object_name]


class UnitResult(BaseModel):
    rel: str
    kind: str
    kernel: str
    compiler: str
    ok: bool
    object_path: str | None = None
    log_path: str | None = None
    kernels: list[KernelStats] = Field(default_factory=list)
    errors: list[CompileError] = Field(default_factory=list)
    arches: list[str] = Field(default_factory=list)
    cache_hit: bool = False
    wall_s: float = 0.0
    """Compile wall time (for a cache hit: the time of the original compile)."""
    timed_out: bool = False
    returncode: int | None = None
    reason: str = ""
    command: list[str] = Field(default_factory=list)
    backend: str = ""


def _populate(workspace: Path, files: dict[str, bytes]) -> None:
    src = workspace / "src"
    for rel, data in files.items():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    inc = workspace / "kg_include"
    for rel, text in supplied_headers().items():
        (inc / rel).parent.mkdir(parents=True, exist_ok=True)
        (inc / rel).write_text(text)


def _deterministic_failure(returncode: int | None, text: str) -> bool:
    """A compile error worth caching: a clean non-zero exit with a located error,
    not a compiler killed by a signal or by memory pressure."""
    if returncode is None or returncode <= 0:
        return False
    if re.search(r"died due to signal|Killed|out of memory|std::bad_alloc|virtual memory exhausted", text):
        return False
    return bool(first_errors(text, limit=1))


_GLOBAL_SLOTS: threading.BoundedSemaphore | None = None
_SLOTS_LOCK = threading.Lock()


def default_parallel() -> int:
    """Compiles at once: one per 3 GB of available memory, at most one per core.
    KERNELGRADE_COMPILE_JOBS overrides (e.g. 1 on a machine shared with other work)."""
    override = os.environ.get("KERNELGRADE_COMPILE_JOBS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    avail_gb = 0.0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail_gb = int(line.split()[1]) / (1024 * 1024)
    except OSError:
        avail_gb = GB_PER_COMPILE
    return max(1, min(os.cpu_count() or 1, int(avail_gb // GB_PER_COMPILE)))


def _slots() -> threading.BoundedSemaphore:
    """One process-wide bound, so parallel trials in `eval` cannot stack compiles."""
    global _GLOBAL_SLOTS
    with _SLOTS_LOCK:
        if _GLOBAL_SLOTS is None:
            _GLOBAL_SLOTS = threading.BoundedSemaphore(default_parallel())
        return _GLOBAL_SLOTS


@dataclass
class BuildEnv:
    """Tools and versions shared by all units of one check."""

    nvcc: Path | None
    cxx: Path | None
    versions: dict[str, str]
    """Into every cache key: nvcc, cxx, torch, header pins."""
    ro_paths: tuple[Path, ...] = ()
    sandbox: str = "auto"
    timeout_s: float = 600.0
    memory_mb: int = 0
    """0: no address-space limit (cicc reserves large virtual ranges); the per-compile
    memory bound is the slot count above."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Host path -> label in cache keys (the venv's torch include dir -> "<torch>"), so a
    fresh clone elsewhere with the same toolchain still hits the cache."""


def unit_key(unit: CompileUnit, files: dict[str, bytes], env: BuildEnv) -> str:
    flags = list(unit.flags)
    for path, label in sorted(env.aliases.items(), key=lambda kv: -len(kv[0])):
        flags = [f.replace(path, label) for f in flags]
    return content_key(files=files, scheme=SCHEME_VERSION, rel=unit.rel, compiler=unit.compiler,
                       flags=flags, versions=env.versions,
                       registration=hashlib.sha256(REGISTRATION_H.encode()).hexdigest(),
                       # only sources that name THC/ can see the shims: other units keep their keys
                       **({"thc": repr(sorted(THC_SHIMS.items()))} if any(b"THC/" in d for d in files.values()) else {}))


def compile_unit(unit: CompileUnit, files: dict[str, bytes], env: BuildEnv, *,
                 cache: BuildCache | None = None) -> UnitResult:
    """Compile one unit through the cache; never raises for the candidate's faults."""
    cache = cache or BuildCache("compile")
    tool = env.nvcc if unit.compiler == "nvcc" else env.cxx
    base = UnitResult(rel=unit.rel, kind=unit.kind, kernel=unit.kernel, compiler=unit.compiler,
                      ok=False, arches=unit.arches)
    if tool is None:
        base.reason = f"no {unit.compiler} found"
        return base
    key = unit_key(unit, files, env)
    outcome: dict[str, UnitResult] = {}

    def build(tmp: Path) -> bool:
        _populate(tmp, files)
        cmd = unit.command(tool)
        limits = Limits(wall_s=env.timeout_s, cpu_s=int(env.timeout_s * 2) + 60,
                        memory_mb=env.memory_mb, file_mb=2048)
        with _slots():
            res = run_sandboxed(cmd, cwd=tmp, limits=limits, backend=env.sandbox, ro_paths=env.ro_paths)
        text = (res.stdout + ("\n" if res.stdout and res.stderr else "") + res.stderr)
        (tmp / "compile.log").write_text("$ " + " ".join(cmd) + "\n" + text
                                         + "".join(f"\n[sandbox] {n}" for n in res.notes))
        shutil.rmtree(tmp / "src", ignore_errors=True)  # the cache keeps outputs, not inputs
        shutil.rmtree(tmp / "kg_include", ignore_errors=True)
        ok = res.ok and (tmp / unit.object_name).is_file()
        result = base.model_copy(update=dict(
            ok=ok, object_path=unit.object_name if ok else None, log_path="compile.log",
            kernels=parse_ptxas(text) if unit.compiler == "nvcc" else [],
            errors=[] if ok else first_errors(text), wall_s=round(res.wall_s, 3),
            timed_out=res.timed_out, returncode=res.returncode, command=cmd, backend=res.backend))
        if res.timed_out:
            result.reason = f"timed out after {env.timeout_s:g} s"
        elif not ok:
            result.reason = (result.errors[0].message if result.errors
                             else f"{unit.compiler} exited {res.returncode}" + (
                                 f" ({res.signal_name})" if res.signal_name else ""))
        (tmp / "result.json").write_text(result.model_dump_json(indent=1))
        outcome["result"] = result
        return ok or _deterministic_failure(res.returncode, text)

    entry, hit = cache.get_or_build(key, build)
    if hit:
        result = UnitResult.model_validate_json((entry / "result.json").read_text())
        result.cache_hit = True
    else:
        result = outcome["result"]
        if cache.lookup(key) is None and entry is not None and entry.name.startswith("."):
            # Not cached (timeout, killed compiler): keep only its log, drop the temp build.
            failed = cache.root / "failed"
            failed.mkdir(exist_ok=True)
            if (entry / "compile.log").is_file():
                shutil.copyfile(entry / "compile.log", failed / f"{key}.log")
            shutil.rmtree(entry, ignore_errors=True)
            entry, result.log_path = failed, f"{key}.log"
    # Paths become absolute into the cache entry (or the failed build's folder).
    if result.object_path:
        result.object_path = str(entry / result.object_path)
    if result.log_path:
        result.log_path = str(entry / result.log_path)
    return result


def compile_units(units: list[CompileUnit], files: dict[str, bytes], env: BuildEnv, *,
                  cache: BuildCache | None = None, parallel: int | None = None) -> list[UnitResult]:
    """Compile all units, at most `parallel` at once (default: by memory); order kept."""
    cache = cache or BuildCache("compile")
    workers = max(1, min(parallel or default_parallel(), len(units) or 1))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kg-compile") as pool:
        results = list(pool.map(lambda u: compile_unit(u, files, env, cache=cache), units))
    log.info("compiled %d units in %.1f s (%d workers)", len(units), time.monotonic() - start, workers)
    return results


def dump_results(results: list[UnitResult], path: Path) -> None:
    path.write_text(json.dumps([r.model_dump() for r in results], indent=1))


__all__ = [
    "BuildEnv", "CompileError", "CompileUnit", "H100_ARCHES", "KernelStats", "UnitResult",
    "compile_unit", "compile_units", "default_parallel", "first_errors",
    "parse_ptxas", "strip_half_defines",
]


# ---------------------------------------------------------------- planning from build.toml


