"""From build.toml to compile units: which kernels build for which H100 targets, with which flags
and include folders, as kernel-builder would build them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.build.nvcc import (
    CXX_BASE,
    H100_ARCHES,
    NVCC_BASE,
    NVCC_STATS,
    TORCH_DEFINES,
    CompileUnit,
    strip_half_defines,
)
from harness.project.capabilities import Capability, parse_capability

#: Options a project's cuda-flags may not carry: they would redirect outputs or
#: load code from outside the project into the compiler.
_DENIED_FLAGS = re.compile(r"^(-o|--output-file|-ccbin|--compiler-bindir|-odir|--output-directory|--keep-dir"
                           r"|--run|-run|-fplugin.*|-B.*|--dryrun|-E|-M\w*|--linker-options|-Xlinker|-L.*)$")


@dataclass
class Plan:
    """What compile will build, plus notes and errors found while deriving it."""

    units: list[CompileUnit] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): not compiled, defaulted, ..."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): the project cannot be built as asked."""
    needs_torch: bool = False
    unsupplied: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): kernels left out because a dependency (CUTLASS, ...) is not available."""


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

    def external(self, *, host: bool) -> list[str]:
        dirs = [*self.torch, *([self.python] if self.python else []),
                *([self.math_headers] if self.math_headers else []), *(self.cuda if host else [])]
        return [f"-I{d}" for d in dirs]


def kernel_targets(caps: list[str] | None, requested: list[str] | None, key: str,
                   plan: Plan) -> list[Capability]:
    """The H100 targets to compile for one kernel. Other valid capabilities are notes
    (only sm_90 / sm_90a are compiled in a check); requested ones missing are errors."""
    if caps is None:
        plan.notes.append((key, "no cuda-capabilities: the builder's default list; compiled its H100 target 9.0"))
        caps = ["9.0"]
    targets: list[Capability] = []
    for cap in caps:
        target = parse_capability(str(cap))
        if target is None:
            plan.errors.append((key, f"{cap!r} is not a capability the builder understands (use \"9.0\" or \"9.0a\")"))
        elif target.arch in H100_ARCHES:
            targets.append(target)
        else:
            plan.notes.append((key, f"{cap} not compiled (checks compile H100 targets only)"))
    for want in requested or []:
        want_arch = parse_capability(want)
        arches = {t.arch for t in targets}
        if want_arch is None:
            continue
        ok = want_arch.arch in arches if want_arch.arch.endswith("a") else bool(arches & set(H100_ARCHES))
        if not ok:
            plan.errors.append((key, f"the case requires {want} but the kernel lists {list(caps)}"))
    if not targets and not any(k == key for k, _ in plan.errors):
        plan.errors.append((key, f"no H100 target (9.0 or 9.0a) in {list(caps)}"))
    return targets


def _user_flags(flags: list[str], key: str, plan: Plan) -> list[str]:
    kept: list[str] = []
    for flag in strip_half_defines(flags):
        if _DENIED_FLAGS.match(flag) or flag.startswith("-o"):
            plan.errors.append((key, f"flag {flag!r} is not allowed in a checked build"))
        else:
            kept.append(flag)
    return kept


def _with_std(base: list[str], std: str) -> list[str]:
    return [f"-std={std}" if f.startswith("-std=") else f for f in base]


def plan_cuda(project, *, ext_name: str, includes: Includes,
              requested: list[str] | None = None) -> Plan:
    """Units for every CUDA kernel source and the torch binding (with -DCUDA_KERNEL).

    `project` is a harness.project.info.ProjectInfo. Flags follow kernel-builder: gencode per
    capability, C++17 (C++20 where torch requires it), relaxed constexpr, FP8 enabled for sm_89+, the extension name,
    registration.h on the include path (kg_include/ in the workspace)."""
    plan = Plan()
    cuda_kernels = project.kernels_for("cuda")
    for other in project.kernels:
        if other.backend not in ("cuda", "cpu"):
            plan.notes.append((f"kernel.{other.name}", f"backend {other.backend!r} not checked here"))
    if not cuda_kernels:
        return plan
    plan.needs_torch = project.has_torch
    nvcc_base, cxx_base = _with_std(NVCC_BASE, includes.cxx_std), _with_std(CXX_BASE, includes.cxx_std)
    torch_defs = [*TORCH_DEFINES, f"-DTORCH_EXTENSION_NAME={ext_name}"] if project.has_torch else []
    all_targets: dict[str, Capability] = {}
    for kernel in cuda_kernels:
        key = f"kernel.{kernel.name}"
        targets = kernel_targets(kernel.cuda_capabilities, requested, f"{key}.cuda-capabilities", plan)
        if not targets:
            continue
        all_targets.update({t.arch: t for t in targets})
        if any(d.startswith("cutlass") or d == "sycl_tla" for d in kernel.depends):
            # Not the project's fault: a skip that names the dependency (REFERENCE §3).
            plan.unsupplied.append((f"{key}.depends", "not compiled: needs a dependency this checker cannot "
                                    "supply: " + ", ".join(d for d in kernel.depends if d != "torch")))
            continue
        user = _user_flags(kernel.cuda_flags, f"{key}.cuda-flags", plan)
        incs = [f"-Isrc/{inc}" for inc in kernel.include]
        gencode = [f for t in targets for f in t.gencode]
        fp8 = ["-DENABLE_FP8"] if any(int(re.sub(r"\D", "", t.arch)) >= 89 for t in targets) else []
        for src in kernel.src:
            if not src.endswith(".cu"):
                continue  # headers are included, .cpp in a CUDA kernel is compiled by the host compiler below
            flags = [*nvcc_base, *gencode, *fp8, *torch_defs, "-Isrc", *incs, "-Ikg_include",
                     *includes.external(host=False), *user, *NVCC_STATS]
            plan.units.append(CompileUnit(rel=src, compiler="nvcc", flags=flags, kind="kernel",
                                          kernel=kernel.name, arches=[t.arch for t in targets]))
        for src in kernel.src:
            if Path(src).suffix in (".cpp", ".cc", ".cxx"):
                flags = [*cxx_base, *torch_defs, "-Isrc", *incs, "-Ikg_include", *includes.external(host=True),
                         *strip_half_defines(kernel.cxx_flags)]
                plan.units.append(CompileUnit(rel=src, compiler="cxx", flags=flags, kind="kernel",
                                              kernel=kernel.name))
    if project.has_torch and all_targets:
        for src in project.torch_src:
            suffix = Path(src).suffix
            if suffix == ".cu":
                gencode = [f for t in all_targets.values() for f in t.gencode]
                flags = [*nvcc_base, *gencode, *torch_defs, "-DCUDA_KERNEL", "-Isrc", "-Ikg_include",
                         *includes.external(host=False), *NVCC_STATS]
                plan.units.append(CompileUnit(rel=src, compiler="nvcc", flags=flags, kind="binding",
                                              kernel="torch", arches=list(all_targets)))
            elif suffix in (".cpp", ".cc", ".cxx"):
                flags = [*cxx_base, *torch_defs, "-DCUDA_KERNEL", "-Isrc", "-Ikg_include",
                         *includes.external(host=True)]
                plan.units.append(CompileUnit(rel=src, compiler="cxx", flags=flags, kind="binding",
                                              kernel="torch"))
    return plan


__all__ = ['Includes', 'Plan', 'kernel_targets', 'plan_cuda']
