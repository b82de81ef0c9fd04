"""The `compile` check: build every CUDA kernel source and the torch binding for the
H100 targets the project (and the case) ask for, compile-only, through the cache.
With `--device cpu` it also builds the CPU kernels into a loadable extension
(harness.build.cpu_extension), which the run check then loads.

Hands over to later checks in ctx.state: "cuda_objects" (objects with SASS, for
the sass check), "compile_units" (all unit results), "cpu_build" (the CPU build),
"cuda_build" (the linked extension, harness.build.cuda_extension: wherever torch is a CUDA build),
"load_report" (below --level run: what loading it without a GPU registered, harness.build.load_probe).
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

from harness.checks.base import CheckContext
from harness.common.errors import UserError
from harness.common.results import CheckResult, Finding
from harness.project.info import ProjectInfo, read_project

log = logging.getLogger(__name__)

NAME = "compile"
#: Errors shown per failed unit (the full log keeps the rest).
MAX_ERRORS_PER_UNIT = 3


def _build_env(ctx: CheckContext, plan):
    """Tools, include dirs, versions for a plan (needs_torch, needs_tvm_ffi). Returns
    ((BuildEnv, Includes, nvcc Tool), "") or (None, the reason nothing can be compiled)."""
    from harness.build import toolchain
    from harness.build.cuda_plan import Includes
    from harness.build.headers import (
        CUTLASS_WHEELS,
        HEADER_WHEELS,
        TVM_FFI_WHEEL,
        ensure_cutlass_headers,
        ensure_math_headers,
        ensure_tvm_ffi_headers,
    )
    from harness.build.nvcc import BuildEnv

    nvcc = toolchain.find_nvcc()
    if nvcc is None:
        return None, "nvcc not found (PATH, CUDA_HOME or the nvidia-cuda-nvcc package)"
    cxx = toolchain.find_cxx()
    includes = Includes(cuda=toolchain.cuda_include_dirs(nvcc.path))
    versions = {"nvcc": toolchain.tool_version(nvcc.path),
                "cxx": toolchain.tool_version(cxx.path) if cxx else ""}
    aliases: dict[str, str] = {}
    if plan.needs_torch:
        info = toolchain.torch_info()
        if info is None:
            return None, "torch is not installed: its headers are needed for the binding"
        try:
            includes.math_headers = ensure_math_headers()
        except (RuntimeError, OSError) as err:
            return None, f"cuBLAS/cuSPARSE/cuSOLVER headers missing ({err}); run scripts/install_headers.py"
        includes.torch = list(info.include_dirs)
        includes.cxx_std = info.cxx_std
        includes.torch_version = info.version
        includes.python = toolchain.python_include_dir()
        versions["torch"] = info.version
        versions["headers"] = ",".join(f"{k}=={v}" for k, v in sorted(HEADER_WHEELS.items()))
        aliases = {str(info.include_dirs[0]): "<torch>", str(includes.python): "<python>",
                   str(includes.math_headers): "<math-headers>"}
    if plan.needs_tvm_ffi:
        try:
            includes.tvm_ffi = ensure_tvm_ffi_headers()
        except (RuntimeError, OSError, subprocess.SubprocessError) as err:
            return None, (f"tvm-ffi headers ({'=='.join(TVM_FFI_WHEEL)}) missing ({err}); "
                          "run scripts/install_headers.py")
        versions["tvm-ffi"] = "==".join(TVM_FFI_WHEEL)
        aliases[str(includes.tvm_ffi)] = "<tvm-ffi>"
    for dep in plan.wanted_deps:  # a dependency that cannot be had stays unsupplied: the plan says so
        try:
            includes.deps[dep] = ensure_cutlass_headers(dep)
        except (RuntimeError, OSError, subprocess.SubprocessError) as err:
            log.warning("%s headers not installed: %s", dep, err)
            continue
        versions[dep] = f"nvidia-cutlass=={CUTLASS_WHEELS[dep]}"
        aliases[str(includes.deps[dep])] = f"<{dep}>"
    for d in includes.cuda:
        aliases[str(d)] = "<cuda>"
    ro = tuple(p for p in (*includes.torch, includes.python, includes.math_headers, includes.tvm_ffi,
                           *includes.deps.values(), *includes.cuda) if p)
    env = BuildEnv(nvcc=nvcc.path, cxx=cxx.path if cxx else None, versions=versions, ro_paths=ro,
                   sandbox=ctx.options.sandbox, timeout_s=ctx.options.compile_timeout_s, aliases=aliases)
    return (env, includes, nvcc), ""


def no_cuda_kernel(project: ProjectInfo) -> str:
    """One statement of why there is nothing for nvcc: noarch, other backends only, or no kernel."""
    if project.framework == "torch-noarch":
        return "no CUDA kernel to compile: a [torch-noarch] project (Python only, e.g. Triton)"
    backends = sorted({k.backend for k in project.kernels})
    if backends:
        return f"no CUDA kernel to compile: build.toml has {', '.join(backends)} kernels only"
    return "no CUDA kernel to compile: build.toml has no [kernel.*] table"


def _write_log(results, path: Path) -> None:
    parts: list[str] = []
    for r in results:
        head = f"===== {r.rel} ({r.compiler}{', cached' if r.cache_hit else ''}): {'ok' if r.ok else 'FAILED'}"
        body = Path(r.log_path).read_text(errors="replace") if r.log_path and Path(r.log_path).is_file() else r.reason
        parts.append(f"{head}\n{body}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))


def _cuda(ctx: CheckContext, project: ProjectInfo, findings: list[Finding], metrics: dict) -> str | None:
    """Compile the CUDA side. Returns a skip reason when nothing could be compiled."""
    from harness.build.builder_files import extension_name
    from harness.build.cache import content_key
    from harness.build.cuda_plan import Includes, plan_cuda
    from harness.build.nvcc import compile_units
    from harness.build.toolchain import release_of
    from harness.project.sources import source_bytes

    if not project.kernels_for("cuda"):
        return no_cuda_kernel(project)
    requested = ctx.case.kernel.capabilities if ctx.case is not None and ctx.case.kernel else None
    files = source_bytes(project.root)
    ext = extension_name(project.name, "cuda", content_key(files=files))
    # Plan once without include dirs to learn whether torch is needed, then for real.
    probe = plan_cuda(project, ext_name=ext, includes=Includes(), requested=requested)
    built, reason = _build_env(ctx, probe)
    if built is None:
        return reason
    env, includes, nvcc = built
    plan = plan_cuda(project, ext_name=ext, includes=includes, requested=requested)
    findings += [Finding(severity="note", key=k, reason=r) for k, r in plan.notes]
    findings += [Finding(severity="error", key=k, reason=r) for k, r in plan.errors]
    findings += [Finding(severity="warning", key=k, reason=r) for k, r in [*plan.warnings, *plan.unsupplied]]
    metrics["nvcc"] = f"{release_of(env.versions['nvcc']) or '?'} at {nvcc.path} ({nvcc.source})"
    if "torch" in env.versions:
        metrics["torch"] = env.versions["torch"]
    if "tvm-ffi" in env.versions:
        metrics["tvm_ffi"] = env.versions["tvm-ffi"]
    for dep in includes.deps:
        findings.append(Finding(severity="note", key=f"depends.{dep}", reason=f"headers of {env.versions[dep]} "
                                "(CUTLASS's include/ at the release kernel-builder fetches)"))
    if project.framework == "torch" and project.stable_abi_for("cuda"):
        metrics["stable_abi"] = project.stable_abi_for("cuda")
    if not plan.units:
        if plan.errors:
            return None
        if plan.unsupplied:
            return "; ".join(r for _, r in plan.unsupplied)
        return "no CUDA source to compile"
    start = time.monotonic()
    results = compile_units(plan.units, files, env)
    metrics["compile_wall_s"] = round(time.monotonic() - start, 2)
    log_path = ctx.artifacts / "compile" / "cuda.log"
    _write_log(results, log_path)
    ctx.state["compile_log"] = str(log_path)
    ctx.state["compile_units"] = [r.model_dump() for r in results]
    ctx.state["cuda_ext_name"] = ext  # TORCH_EXTENSION_NAME the binding objects were built with
    ctx.state["cuda_objects"] = [
        {"path": r.object_path, "source": r.rel, "kernel": r.kernel, "arches": r.arches}
        for r in results if r.ok and r.compiler == "nvcc" and r.object_path]
    timed_out = []
    for r in results:
        if r.ok:
            continue
        if r.timed_out and ctx.case is None:
            # A project checked on its own (a maintainer's CI): the checker's time limit is no
            # verdict on it. A model's answer that compiles past the limit still fails its case.
            timed_out.append(r.rel)
            findings.append(Finding(severity="note", key=r.rel, reason=r.reason))
            continue
        if r.errors:
            for err in r.errors[:MAX_ERRORS_PER_UNIT]:
                findings.append(Finding(severity="error", key=err.where(), reason=err.message))
        else:
            findings.append(Finding(severity="error", key=r.rel, reason=r.reason or "compile failed"))
    if timed_out:
        ctx.state["compile_limit"] = (f"{', '.join(timed_out)}: the compiler ran past the checker's limit of "
                                      f"{ctx.options.compile_timeout_s:g} s per unit (no verdict on the project; "
                                      "raise it with --timeout)")
    stats = [k for r in results for k in r.kernels]
    for k in stats:
        spills = k.spill_stores + k.spill_loads
        findings.append(Finding(
            severity="warning" if spills else "note", key=f"{k.name} [{k.arch}]",
            reason=f"{k.registers} registers, {k.smem_bytes} B smem, "
                   f"{k.spill_stores} B spill stores, {k.spill_loads} B spill loads"))
    metrics.update({
        "units": len(results),
        "units_cached": sum(r.cache_hit for r in results),
        "cache_hit": all(r.cache_hit for r in results),
        "kernels": len(stats),
        "max_registers": max((k.registers or 0 for k in stats), default=None),
        "max_smem_bytes": max((k.smem_bytes for k in stats), default=None),
        "spill_bytes": sum(k.spill_stores + k.spill_loads for k in stats),
        "arches": ",".join(sorted({a for r in results for a in r.arches})),
        "sandbox": ",".join(sorted({r.backend for r in results if r.backend})) or None,
    })
    if ctx.device == "cuda" and all(r.ok for r in results):
        if project.framework == "tvm-ffi":
            findings.append(Finding(severity="note", key="link", reason="tvm-ffi extension: compiled only "
                                    "(kernelgrade links and loads torch extensions)"))
        elif plan.unsupplied:
            findings.append(Finding(severity="note", key="link", reason="not linked: kernels were left out "
                                    "(" + "; ".join(r for _, r in plan.unsupplied) + ")"))
        else:
            _link(ctx, project, ext, nvcc.path, findings, metrics)
    return None


def _link(ctx: CheckContext, project: ProjectInfo, ext: str, nvcc: Path, findings: list[Finding],
          metrics: dict) -> None:
    """Link the objects into the extension: for the run check to load on a GPU host, and
    below --level run, where torch is a CUDA build, to load it once without a GPU (which
    catches undefined symbols and missing registrations). A CPU build of torch cannot
    link a CUDA extension: say so, never count it as done."""
    from harness.build.cuda_extension import link_cuda_extension
    from harness.build.toolchain import (
        cuda_home_of,
        release_of,
        tool_version,
        torch_info,
    )

    info = torch_info()
    if info is None or not project.has_torch:
        return
    if not info.cuda:
        metrics["loaded"] = False
        findings.append(Finding(severity="note", key="link", reason=f"not linked or loaded: torch {info.version} is "
                                "a CPU build (a CUDA build of torch loads the extension without a GPU)"))
        return
    nvcc_release = release_of(tool_version(nvcc))
    if info.cuda_version.split(".")[0] != nvcc_release.split(".")[0]:
        # Two CUDA runtimes in one process: the link may succeed and the load lie.
        findings.append(Finding(severity="warning", key="link", reason=f"not linked: torch {info.version} is built "
                                f"for CUDA {info.cuda_version or '?'}, nvcc is {nvcc_release or '?'}"))
        return
    cuda_home = cuda_home_of(nvcc)
    build = link_cuda_extension(project, ctx.state.get("compile_units", []), ext, artifacts=ctx.artifacts / "cuda",
                                torch_lib=info.lib_dir, cuda_home=cuda_home, sandbox=ctx.options.sandbox,
                                timeout_s=ctx.options.compile_timeout_s)
    ctx.state["cuda_build"] = build
    metrics["link_cache_hit"] = build.cache_hit
    if not build.ok or build.package_dir is None:
        findings.append(Finding(severity="error", key="link", reason=build.reason))
        return
    if ctx.level == "run":
        return  # the run check loads it, on the GPU
    from harness.build.load_probe import probe_extension

    api = ctx.case.kernel.api_name if ctx.case is not None and ctx.case.kernel else None
    report = probe_extension(build.package_dir, ext, api=api, workdir=ctx.artifacts / "cuda" / "load",
                             sandbox=ctx.options.sandbox, extra_ro=(info.lib_dir, *([cuda_home] if cuda_home else [])))
    metrics["loaded"] = report.ok
    ctx.state["load_report"] = report
    findings.append(Finding(severity="note" if report.ok else "error", key="load", reason=report.reason))


def _cpu(ctx: CheckContext, project: ProjectInfo, findings: list[Finding], metrics: dict) -> str | None:
    """Build the CPU kernels (device cpu). Returns a skip reason when it could not run."""
    try:
        from harness.build.cpu_extension import build_cpu_extension
    except ModuleNotFoundError as err:
        if err.name == "harness.build.cpu_extension":
            return "CPU build not available in this kernelgrade"
        raise
    if not project.kernels_for("cpu"):
        return "no CPU kernel in build.toml"
    build = build_cpu_extension(project, artifacts=ctx.artifacts / "cpu", sandbox=ctx.options.sandbox,
                                timeout_s=ctx.options.compile_timeout_s)
    ctx.state["cpu_build"] = build
    metrics["cpu_cache_hit"] = build.cache_hit
    if not build.ok:
        findings.append(Finding(severity="error", key="cpu build", reason=build.reason))
    return None


def check_compile(ctx: CheckContext) -> CheckResult:
    if ctx.project_dir is None:
        return CheckResult.skip(NAME, "no project to compile")
    try:
        project = read_project(ctx.project_dir)
    except UserError as err:
        return CheckResult.from_findings(NAME, [Finding(severity="error", key="build.toml", reason=str(err))])
    findings: list[Finding] = []
    metrics: dict = {}
    cuda_skip = _cuda(ctx, project, findings, metrics)
    cpu_skip = _cpu(ctx, project, findings, metrics) if ctx.device == "cpu" else "device is cuda"
    if cuda_skip and ctx.device == "cpu":
        findings.append(Finding(severity="note", key="cuda", reason=f"not compiled: {cuda_skip}"))
    if cpu_skip and ctx.device == "cpu":
        findings.append(Finding(severity="note", key="cpu", reason=f"not built: {cpu_skip}"))
    nothing_ran = cuda_skip is not None and (ctx.device != "cpu" or cpu_skip is not None)
    if nothing_ran and not any(f.severity == "error" for f in findings):
        reasons = cuda_skip if ctx.device != "cpu" else f"{cuda_skip}; {cpu_skip}"
        result = CheckResult.skip(NAME, reasons)
        result.findings = findings
        return result
    parts = []
    if cuda_skip is None:
        parts.append(f"{metrics.get('units', 0)} CUDA units for {metrics.get('arches') or 'no arch'}"
                     + (" (cached)" if metrics.get("cache_hit") else ""))
        if metrics.get("tvm_ffi"):
            parts.append("tvm-ffi extension, compiled only")
        if metrics.get("loaded"):
            parts.append("linked and loaded without a GPU")
        elif metrics.get("loaded") is False and not any(f.key == "load" for f in findings):
            parts.append("not linked or loaded (torch here is a CPU build)")  # a skipped step, said in the reason
    if ctx.device == "cpu" and cpu_skip is None:
        parts.append("CPU extension built" + (" (cached)" if metrics.get("cpu_cache_hit") else ""))
    if (limit := ctx.state.get("compile_limit")) and not any(f.severity == "error" for f in findings):
        result = CheckResult.error(NAME, str(limit))
        result.findings, result.metrics = findings, metrics
        return result
    result = CheckResult.from_findings(NAME, findings, ok_reason="; ".join(parts) or "ok", metrics=metrics,
                                       log_path=ctx.state.get("compile_log"))  # type: ignore[arg-type]
    if ctx.device == "cpu":
        result.device = "cpu"
    return result
