"""From build.toml to compile units: which kernels build for which H100 targets, with which flags
and include folders, as kernel-builder would build them.

What kernel-builder's CMake templates give each unit (kernel-builder/src/pyproject/templates/):
- every unit: CUDA_KERNEL (and USE_CUDA=1 for torch), the extension's name (TORCH_EXTENSION_NAME,
  or TVM_FFI_EXTENSION_NAME for [tvm-ffi]), and TORCH_TARGET_VERSION when [torch] stable-abi
  names a version for cuda;
- a kernel's .cu units: its `cuda-flags`; its C++ units: its `cxx-flags`; all its units: its
  `include` folders;
- the binding's C++ units: [torch] / [tvm-ffi] `cxx-flags` (a .cu binding gets none); all its
  units: that section's `include` folders;
- nvcc units of a torch extension: torch's nvcc flags (relaxed constexpr, ENABLE_FP8, no
  __CUDA_NO_HALF*); a [tvm-ffi] extension gets none of them and no registration.h.
Flags from build.toml pass the deny-list (_user_flags) whatever unit they reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.build.headers import CUTLASS_WHEELS
from harness.build.nvcc import (
    CXX_BASE,
    H100_ARCHES,
    NVCC_BASE,
    NVCC_BASE_TVM_FFI,
    NVCC_STATS,
    TORCH_DEFINES,
    CompileUnit,
    strip_half_defines,
)
from harness.project.capabilities import Capability, own_target, parse_capability

#: Options a project's cuda-flags may not carry: they would redirect outputs or
#: load code from outside the project into the compiler.
_DENIED_FLAGS = re.compile(r"^(-o|--output-file|-ccbin|--compiler-bindir|-odir|--output-directory|--keep-dir"
                           r"|--run|-run|-fplugin.*|-B.*|--dryrun|-E|-M\w*|--linker-options|-Xlinker|-L.*"
                           r"|-wrapper|--?specs.*|@.*|--options-file|-optf)$")
#: Options whose value is handed to another tool (-Xcompiler=-B/x,...): each part is checked too.
_PASS_THROUGH = re.compile(r"^(-Xcompiler|--compiler-options|-Xptxas|--ptxas-options|-Xnvlink|--nvlink-options"
                           r"|-Xarchive|--archive-options|-Wl|-Wa|-Wp)[=,](?P<rest>.+)$")


@dataclass
class Plan:
    """What compile will build, plus notes and errors found while deriving it."""

    units: list[CompileUnit] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): not compiled, defaulted, ..."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): the project cannot be built as asked."""
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): built, but not as kernel-builder would (e.g. outside [torch] minver/maxver)."""
    needs_torch: bool = False
    needs_tvm_ffi: bool = False
    wanted_deps: list[str] = field(default_factory=list)
    """`depends` entries that have a header supplier (harness.build.headers.CUTLASS_WHEELS)."""
    unsupplied: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): kernels left out because a dependency (CUTLASS, a newer torch, ...) is not available."""


@dataclass
class Includes:
    """Include folders outside the workspace, found by the toolchain."""

    torch: list[Path] = field(default_factory=list)
    python: Path | None = None
    math_headers: Path | None = None
    cuda: list[Path] = field(default_factory=list)
    """The toolkit's include dir, for host-compiled sources that include CUDA headers."""
    cxx_std: str = "c++17"
    """The language standard the torch headers require (torch 2.14 needs C++20)."""
    torch_version: str | None = None
    """The installed torch ("2.13.0+cpu"), for [torch] stable-abi and minver/maxver."""
    tvm_ffi: Path | None = None
    """The apache-tvm-ffi headers (tvm/ffi/*.h, dlpack/dlpack.h), for [tvm-ffi] projects."""
    deps: dict[str, Path] = field(default_factory=dict)
    """Header-only dependencies found for `depends` entries (cutlass_3_6 -> its include/); on every
    unit's path, as kernel-builder's include_directories(${CUTLASS_INCLUDE_DIR}) puts them."""

    def external(self, *, host: bool) -> list[str]:
        dirs = [*self.torch, *([self.python] if self.python else []),
                *([self.math_headers] if self.math_headers else []), *([self.tvm_ffi] if self.tvm_ffi else []),
                *self.deps.values(), *(self.cuda if host else [])]
        return [f"-I{d}" for d in dirs]


def kernel_targets(caps: list[str] | None, requested: list[str] | None, key: str,
                   plan: Plan) -> list[Capability]:
    """The H100 targets to compile for one kernel. Other valid capabilities are notes
    (only sm_90 / sm_90a are compiled in a check); requested ones missing are errors. A kernel
    with no H100 target (and no case asking for one) is compiled for its own newest target."""
    if caps is None:
        plan.notes.append((key, "no cuda-capabilities: the builder's default list; compiled its H100 target 9.0"))
        caps = ["9.0"]
    targets: list[Capability] = []
    others: list[Capability] = []
    for cap in caps:
        target = parse_capability(str(cap))
        if target is None:
            plan.errors.append((key, f"{cap!r} is not a capability the builder understands (use \"9.0\" or \"9.0a\")"))
        elif target.arch in H100_ARCHES:
            targets.append(target)
        else:
            others.append(target)
    for want in requested or []:
        want_arch = parse_capability(want)
        arches = {t.arch for t in targets}
        if want_arch is None:
            continue
        ok = want_arch.arch in arches if want_arch.arch.endswith("a") else bool(arches & set(H100_ARCHES))
        if not ok:
            plan.errors.append((key, f"the case requires {want} but the kernel lists {list(caps)}"))
    if not targets and not any(k == key for k, _ in plan.errors):
        # kernel-builder builds it for its own list (an sm_80 or sm_100 variant beside the H100
        # one); compile it for the newest of those so its sources are checked and the binding links.
        own = own_target(others)
        if own is None:
            plan.errors.append((key, f"no capability CUDA 13 can build in {list(caps)}"))
        else:
            plan.notes.append((key, f"no H100 target in {list(caps)}: compiled for {own.arch} only, to check "
                                    "its sources; an H100 cannot run it"))
            targets.append(own)
    skipped = [t for t in others if t not in targets]
    if skipped:
        plan.notes.append((key, ", ".join(f"{t.major}.{t.minor}{t.suffix}" for t in skipped)
                           + " not compiled (checks compile H100 targets only)"))
    return targets


def _denied(flag: str) -> bool:
    if _DENIED_FLAGS.match(flag) or flag.startswith("-o"):
        return True
    m = _PASS_THROUGH.match(flag)
    return bool(m) and any(_denied(part) for part in m["rest"].split(","))


def _user_flags(flags: list[str], key: str, plan: Plan) -> list[str]:
    """build.toml's flags for one unit, without the __CUDA_NO_HALF* defines; a denied one
    (redirects outputs, loads code into the compiler) is a plan error."""
    kept: list[str] = []
    for flag in strip_half_defines(flags):
        if _denied(flag):
            plan.errors.append((key, f"flag {flag!r} is not allowed in a checked build"))
        else:
            kept.append(flag)
    return kept


def _with_std(base: list[str], std: str) -> list[str]:
    return [f"-std={std}" if f.startswith("-std=") else f for f in base]


def _version(text: str | None) -> tuple[int, ...] | None:
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", str(text or "").strip())
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def _torch_defines(project, ext_name: str, includes: Includes, plan: Plan) -> list[str] | None:
    """Defines of a torch extension (every unit), with TORCH_TARGET_VERSION for a stable-ABI
    build; None when the installed torch is older than the stable ABI asked for (kernel-builder
    refuses that build: a skip, the project may be fine)."""
    defines = [*TORCH_DEFINES, f"-DTORCH_EXTENSION_NAME={ext_name}", "-DUSE_CUDA=1", "-DCUDA_KERNEL"]
    installed = _version(includes.torch_version)
    for bound, key, newer in ((project.torch_minver, "torch.minver", False), (project.torch_maxver, "torch.maxver", True)):
        want = _version(bound)
        if want and installed and (installed[:len(want)] > want if newer else installed[:len(want)] < want):
            plan.warnings.append((key, f"torch {includes.torch_version} here is {'newer' if newer else 'older'} than "
                                       f"{bound}: kernel-builder would refuse to build against it (compiled anyway)"))
    stable = project.stable_abi_for("cuda")
    if stable is None:
        return defines
    target = _version(stable)
    if target is None or len(target) < 2:
        plan.errors.append(("torch.stable-abi", f"{stable!r} is not a torch version (e.g. \"2.11\")"))
        return defines
    if installed and installed[:2] < target[:2]:
        plan.unsupplied.append(("torch.stable-abi", f"not compiled: the stable ABI targets torch {stable} and torch "
                                                   f"here is {includes.torch_version} (kernel-builder refuses that too)"))
        return None
    return [*defines, f"-DTORCH_TARGET_VERSION=0x{(target[0] << 56) | (target[1] << 48):x}"]


def plan_cuda(project, *, ext_name: str, includes: Includes,
              requested: list[str] | None = None) -> Plan:
    """Units for every CUDA kernel source and the binding ([torch] or [tvm-ffi] src).

    `project` is a harness.project.info.ProjectInfo. Flags follow kernel-builder (module
    docstring): gencode per capability, C++17 (C++20 where torch requires it), the builder's
    defines on every unit, build.toml's flags and include folders on the units they belong to,
    registration.h on the include path (kg_include/ in the workspace) for torch."""
    plan = Plan()
    cuda_kernels = project.kernels_for("cuda")
    for other in project.kernels:
        if other.backend not in ("cuda", "cpu"):
            plan.notes.append((f"kernel.{other.name}", f"backend {other.backend!r} not checked here"))
    if not cuda_kernels:
        return plan
    tvm = project.framework == "tvm-ffi"
    plan.needs_tvm_ffi = tvm
    plan.needs_torch = (project.has_torch and not tvm) or any("torch" in k.depends for k in cuda_kernels)
    if tvm:
        nvcc_base, fp8, kg_include = NVCC_BASE_TVM_FFI, [], []
        defines = [f"-DTVM_FFI_EXTENSION_NAME={ext_name}", "-DCUDA_KERNEL",
                   *(["-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE"] if plan.needs_torch else [])]
    else:
        nvcc_base, fp8, kg_include = NVCC_BASE, ["-DENABLE_FP8"], ["-Ikg_include"]
        found = _torch_defines(project, ext_name, includes, plan) if project.has_torch else ["-DUSE_CUDA=1",
                                                                                              "-DCUDA_KERNEL"]
        if found is None:
            return plan
        defines = found
    nvcc_base, cxx_base = _with_std(nvcc_base, includes.cxx_std), _with_std(CXX_BASE, includes.cxx_std)
    all_targets: dict[str, Capability] = {}
    for kernel in cuda_kernels:
        key = f"kernel.{kernel.name}"
        targets = kernel_targets(kernel.cuda_capabilities, requested, f"{key}.cuda-capabilities", plan)
        if not targets:
            continue
        third_party = [d for d in kernel.depends if d.startswith("cutlass") or d == "sycl_tla"]
        plan.wanted_deps += [d for d in third_party if d in CUTLASS_WHEELS and d not in plan.wanted_deps]
        if any(d not in includes.deps for d in third_party):
            # Not the project's fault: a skip that names the dependency (REFERENCE §3).
            plan.unsupplied.append((f"{key}.depends", "not compiled: needs a dependency this checker cannot "
                                    "supply: " + ", ".join(d for d in third_party if d not in includes.deps)))
            continue
        all_targets.update({t.arch: t for t in targets})
        incs = [f"-Isrc/{inc}" for inc in kernel.include]
        gencode = [f for t in targets for f in t.gencode]
        cuda_user = _user_flags(kernel.cuda_flags, f"{key}.cuda-flags", plan)
        cxx_user = _user_flags(kernel.cxx_flags, f"{key}.cxx-flags", plan)
        for src in kernel.src:
            if src.endswith(".cu"):
                flags = [*nvcc_base, *gencode, *fp8, *defines, "-Isrc", *incs, *kg_include,
                         *includes.external(host=False), *cuda_user, *NVCC_STATS]
                plan.units.append(CompileUnit(rel=src, compiler="nvcc", flags=flags, kind="kernel",
                                              kernel=kernel.name, arches=[t.arch for t in targets]))
            elif Path(src).suffix in (".cpp", ".cc", ".cxx"):  # headers are included, not compiled
                flags = [*cxx_base, *defines, "-Isrc", *incs, *kg_include, *includes.external(host=True), *cxx_user]
                plan.units.append(CompileUnit(rel=src, compiler="cxx", flags=flags, kind="kernel",
                                              kernel=kernel.name))
    if not all_targets or not (project.has_torch or tvm):
        return plan  # no kernel to bind: the binding alone is not a build kernel-builder makes
    binding = "tvm-ffi" if tvm else "torch"
    incs = [f"-Isrc/{inc}" for inc in project.binding_include]
    cxx_user = _user_flags(project.binding_cxx_flags, f"{binding}.cxx-flags", plan)
    for src in project.binding_src:
        suffix = Path(src).suffix
        if suffix == ".cu":  # cxx-flags are for C++ units: a .cu binding gets none
            gencode = [f for t in all_targets.values() for f in t.gencode]
            flags = [*nvcc_base, *gencode, *fp8, *defines, "-Isrc", *incs, *kg_include,
                     *includes.external(host=False), *NVCC_STATS]
            plan.units.append(CompileUnit(rel=src, compiler="nvcc", flags=flags, kind="binding",
                                          kernel=binding, arches=list(all_targets)))
        elif suffix in (".cpp", ".cc", ".cxx"):
            flags = [*cxx_base, *defines, "-Isrc", *incs, *kg_include, *includes.external(host=True), *cxx_user]
            plan.units.append(CompileUnit(rel=src, compiler="cxx", flags=flags, kind="binding", kernel=binding))
    return plan


__all__ = ['Includes', 'Plan', 'kernel_targets', 'plan_cuda']
