"""Link the compile check's CUDA objects into a loadable torch extension (GPU hosts).

The compile check already compiled every CUDA kernel source with nvcc and the binding
with `-DCUDA_KERNEL` (all -fPIC). On a host that runs CUDA checks, this links those
objects with g++ against the installed CUDA build of torch and the toolkit's cudart,
and assembles the same package layout as the CPU build: a copy of torch-ext/<name>/,
the .so and a generated `_ops.py`. Cached by the objects' content; the linker runs
in sandbox/.

It runs wherever torch is a CUDA build, GPU or not: below `--level run` the compile
check then loads the result once without a GPU (harness/build/load_probe.py). With a CPU
build of torch nothing is linked; a test links against the CPU torch's libraries only
to check the objects, the package layout and the module entry point.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.build.builder_files import ops_py
from harness.build.cache import BuildCache, content_key
from harness.project.info import ProjectInfo
from sandbox.limits import Limits
from sandbox.run import run_sandboxed

RECIPE_VERSION = 1
#: torch libraries a CUDA extension needs (torch.utils.cpp_extension links the same set).
TORCH_CUDA_LIBS = ("c10", "c10_cuda", "torch", "torch_cpu", "torch_cuda", "torch_python")


@dataclass(frozen=True)
class CudaBuild:
    ok: bool
    package_dir: Path | None
    ext_name: str
    reason: str
    cache_hit: bool = False
    log_path: Path | None = None


def link_command(objects: list[str], so_rel: str, *, torch_lib: Path, cuda_lib: Path | None,
                 libs: tuple[str, ...] = TORCH_CUDA_LIBS, cxx: str = "g++") -> list[str]:
    """g++ -shared over the objects, torch's libraries and cudart, with rpaths so the
    extension loads without LD_LIBRARY_PATH."""
    cmd = [cxx, "-shared", "-fPIC", *objects, "-o", so_rel, "-L", str(torch_lib), f"-Wl,-rpath,{torch_lib}"]
    cmd += [f"-l{lib}" for lib in libs]
    if cuda_lib is not None:
        cmd += ["-L", str(cuda_lib), f"-Wl,-rpath,{cuda_lib}", "-lcudart"]
    return cmd


def _cuda_lib(cuda_home: Path | None) -> Path | None:
    if cuda_home is None:
        return None
    for cand in (cuda_home / "lib64", cuda_home / "targets" / "x86_64-linux" / "lib", cuda_home / "lib"):
        if any(cand.glob("libcudart.so*")):
            return cand
    return None


def link_cuda_extension(project: ProjectInfo, units: list[dict], ext_name: str, *, artifacts: Path,
                        torch_lib: Path, cuda_home: Path | None, sandbox: str = "auto",
                        timeout_s: float = 300, libs: tuple[str, ...] = TORCH_CUDA_LIBS) -> CudaBuild:
    """`units` are the compile check's unit results (dicts with ok, object_path, compiler).
    Never raises for the project's faults."""
    objects = [Path(u["object_path"]) for u in units if u.get("ok") and u.get("object_path")]
    if not objects or len(objects) != len(units):
        return CudaBuild(ok=False, package_dir=None, ext_name=ext_name, reason="not every unit compiled")
    pkg_src = project.python_package_dir
    if not (pkg_src / "__init__.py").is_file():
        rel = pkg_src.relative_to(project.root)
        return CudaBuild(ok=False, package_dir=None, ext_name=ext_name,
                         reason=f"{rel}/__init__.py missing: no Python package to load the extension from")
    pkg_files = {p.relative_to(pkg_src).as_posix(): p.read_bytes() for p in sorted(pkg_src.rglob("*"))
                 if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts}
    cuda_lib = _cuda_lib(cuda_home)
    key = content_key(files={f"obj/{i}": o.read_bytes() for i, o in enumerate(objects)} | pkg_files,
                      recipe=RECIPE_VERSION, ext=ext_name, torch_lib=str(torch_lib), cuda_lib=str(cuda_lib),
                      libs=list(libs))
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = artifacts / "link_cuda.log"
    pkg_name = pkg_src.name

    def build(tmp: Path) -> bool:
        (tmp / "obj").mkdir()
        names = []
        for obj in objects:
            name = f"obj/{hashlib.sha256(str(obj).encode()).hexdigest()[:8]}-{obj.name}"
            shutil.copyfile(obj, tmp / name)
            names.append(name)
        pkg = tmp / "pkg" / pkg_name
        shutil.copytree(pkg_src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so", "_ops.py"))
        (pkg / "_ops.py").write_text(ops_py(ext_name))
        so_rel = f"pkg/{pkg_name}/{ext_name}.so"
        cmd = link_command(names, so_rel, torch_lib=torch_lib, cuda_lib=cuda_lib, libs=libs)
        ro = tuple(p for p in (torch_lib, cuda_lib) if p is not None)
        result = run_sandboxed(cmd, cwd=tmp, backend=sandbox, ro_paths=ro,
                               limits=Limits(wall_s=timeout_s, cpu_s=int(timeout_s) + 60, memory_mb=4096))
        (tmp / "link.log").write_text("$ " + " ".join(cmd) + "\n" + result.stdout + result.stderr)
        return result.ok and (tmp / so_rel).is_file()

    entry, hit, text = BuildCache("cuda_ext").build_logged(key, build, "link.log")
    log_path.write_text(text)
    if entry is None:
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
        return CudaBuild(ok=False, package_dir=None, ext_name=ext_name, reason=f"link failed: {last[0][:300]}",
                         log_path=log_path)
    return CudaBuild(ok=True, package_dir=entry / "pkg" / pkg_name, ext_name=ext_name,
                     reason="cached" if hit else "linked", cache_hit=hit, log_path=log_path)


__all__ = ["CudaBuild", "TORCH_CUDA_LIBS", "link_command", "link_cuda_extension"]
