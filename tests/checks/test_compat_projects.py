"""Issue 25: `check --level compile` agrees with kernel-builder on the compat fixture projects
(tests/fixtures/projects/compat/, written for these tests, one per point of the issue), and
each fixture fails once the feature it exercises is dropped.

Costs: the kernel-only and tvm-ffi units compile in seconds; cxx_flags_canary and ptx_legacy
build torch bindings (~1 min each here, cold). Every compile goes through the shared cache,
failures included, so a second run of this file takes seconds.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.build.builder_files import REGISTRATION_H
from harness.checks.base import CheckContext
from harness.common.results import CheckResult
from harness.workflows.check_project import check_project, exit_code
from tests.cuda_helpers import needs_nvcc
from tests.expected import read_expected
from tests.prereq import missing

COMPAT = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "compat"
PROJECTS = sorted(p for p in COMPAT.iterdir() if (p / "EXPECTED.txt").is_file())


def _needs_tvm_ffi(name: str) -> None:
    from harness.build.headers import find_tvm_ffi_headers

    if name.startswith("tvm_ffi") and find_tvm_ffi_headers() is None:
        missing("apache-tvm-ffi headers not installed", "run scripts/install_headers.py (setup.sh does)")


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_every_compat_fixture_says_what_it_expects():
    assert {p.name for p in PROJECTS} >= {"cxx_flags_canary", "ptx_legacy", "stable_abi", "tvm_ffi", "tvm_ffi_flags",
                                          "reads_own_data", "triton_only"}
    for project in PROJECTS:
        spec = read_expected(project)
        assert spec.check in ("compile", "scan") and spec.status in ("pass", "skip") and spec.reason, project.name


@needs_nvcc
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_compat_fixture_passes_check_at_compile_level(project):
    """Each fixture as a kernel repository's CI would run it: `check PROJECT --level compile`."""
    spec = read_expected(project)
    _needs_tvm_ffi(project.name)
    found = check_project(project, level="compile")
    by = _by_name(found.results)
    result = by[spec.check]
    assert result.status == spec.status, (result.reason, result.findings)
    assert spec.reason in result.reason
    assert not [r for r in found.results if r.status in ("fail", "error")], found.results
    assert exit_code(found.results, strict=False) == 0
    if spec.status == "skip":  # no CUDA kernel: said once, carried by what it blocks, exit 1 only with --strict
        assert by["sass"].status == "skip" and by["sass"].reason.startswith("compile skipped: no CUDA kernel")
        assert exit_code(found.results, strict=True) == 1
    elif spec.check == "compile":
        assert by["sass"].status == "pass", by["sass"].reason
    if spec.check == "scan":  # its own package data is a warning, never an error
        assert any(f.severity == "warning" and "reads_data" in f.reason for f in result.findings)


# ---------------------------------------------------------------- each feature, dropped

def _plan(name: str, tmp_path: Path):
    """The compile check's own plan, files and build env for a fixture."""
    from harness.build.builder_files import extension_name
    from harness.build.cache import content_key
    from harness.build.cuda_plan import Includes, plan_cuda
    from harness.checks.compile import _build_env
    from harness.project.info import read_project
    from harness.project.sources import source_bytes

    project = read_project(COMPAT / name)
    files = source_bytes(project.root)
    ext = extension_name(project.name, "cuda", content_key(files=files))
    ctx = CheckContext(case=None, text="", project_dir=project.root, level="compile", device="cuda",
                       artifacts=tmp_path)
    built, reason = _build_env(ctx, plan_cuda(project, ext_name=ext, includes=Includes()))
    assert built is not None, reason
    env, includes, _ = built
    return plan_cuda(project, ext_name=ext, includes=includes), files, env


def _compile_without(name: str, rel: str, drop: str, tmp_path: Path):
    """Compile one unit of the fixture's plan with the flags matching `drop` removed."""
    from harness.build.nvcc import compile_unit

    plan, files, env = _plan(name, tmp_path)
    unit = next(u for u in plan.units if u.rel == rel)
    kept = [f for f in unit.flags if not re.search(drop, f)]
    assert len(kept) < len(unit.flags), f"{drop!r} is not in the flags of {rel}: nothing to drop"
    unit.flags = kept
    return compile_unit(unit, files, env)


DROPS = [  # (fixture, unit, flag dropped (regex), what the canary says)
    ("cxx_flags_canary", "scale_cuda/scale.cu", r"^-DKG_KERNEL_CUDA_CANARY=1$", "cuda-flags did not reach its .cu"),
    ("cxx_flags_canary", "scale_cuda/scale.cu", r"^-Isrc/scale_cuda/include$", "scale_params.h"),
    ("cxx_flags_canary", "torch-ext/torch_binding.cpp", r"^-Isrc/torch-ext/include$", "binding_config.h"),
    ("cxx_flags_canary", "torch-ext/torch_binding.cpp", r"^-DKG_BINDING_CANARY=1$", "[torch] cxx-flags did not reach"),
    ("cxx_flags_canary", "scale_cuda/scale_host.cpp", r"^-DKG_KERNEL_CXX_CANARY=1$", "cxx-flags did not reach its .cpp"),
    ("stable_abi", "torch-ext/torch_binding.cpp", r"^-DTORCH_TARGET_VERSION=", "must compile with TORCH_TARGET_VERSION"),
    ("tvm_ffi", "tvm-ffi-ext/tvm_ffi_binding.cpp", r"^-DTVM_FFI_EXTENSION_NAME=", "defines TVM_FFI_EXTENSION_NAME"),
    ("tvm_ffi", "clamp_cuda/clamp.cu", r"^-I.*tvm-ffi-headers", "tvm/ffi/extra/c_env_api.h"),
    ("tvm_ffi_flags", "tvm-ffi-ext/tvm_ffi_binding.cpp", r"^-DKG_TVM_BINDING_CANARY$", "[tvm-ffi] cxx-flags did not"),
    ("tvm_ffi_flags", "clamp_cuda/clamp.cu", r"^-DKG_TVM_KERNEL_CANARY=1$", "cuda-flags did not reach its .cu"),
    ("tvm_ffi_flags", "clamp_cuda/clamp.cu", r"^-Isrc/clamp_cuda/include$", "clamp_config.h"),
]


@needs_nvcc
@pytest.mark.parametrize("name, rel, drop, said", DROPS, ids=[f"{d[0]}:{d[2].strip('^$')}" for d in DROPS])
def test_dropping_a_setting_fires_its_canary(name, rel, drop, said, tmp_path):
    _needs_tvm_ffi(name)
    result = _compile_without(name, rel, drop, tmp_path)
    assert not result.ok
    assert any(said in e.message for e in result.errors) or said in result.reason, (result.reason, result.errors)


@needs_nvcc
def test_stable_abi_binding_needs_the_stable_registration_macros(tmp_path, monkeypatch):
    """registration.h as kernelgrade supplied it before issue 25 (no STABLE_*_EXPAND)."""
    import harness.build.nvcc as nvcc

    old = "\n".join(ln for ln in REGISTRATION_H.splitlines() if "STABLE_TORCH" not in ln) + "\n"
    assert "STABLE_TORCH_LIBRARY_EXPAND" in REGISTRATION_H and "STABLE" not in old
    monkeypatch.setattr(nvcc, "REGISTRATION_H", old)
    plan, files, env = _plan("stable_abi", tmp_path)
    unit = next(u for u in plan.units if u.kind == "binding")
    result = nvcc.compile_unit(unit, files, env)
    lines = files[unit.rel].decode().splitlines()
    expand = next(i for i, ln in enumerate(lines, 1) if ln.startswith("STABLE_TORCH_LIBRARY_EXPAND"))
    assert not result.ok and [e.where() for e in result.errors][:1] == [f"{unit.rel}:{expand}"], result.errors


def _ptx_files(obj: str) -> list[str]:
    from harness.build.toolchain import find_cuobjdump

    tool = find_cuobjdump()
    if tool is None:
        missing("cuobjdump not found", "pip install nvidia-cuda-cuobjdump (the sass extra)")
    out = subprocess.run([str(tool.path), "--list-ptx", obj], capture_output=True, text=True)
    return [ln for ln in out.stdout.splitlines() if "PTX file" in ln]


@needs_nvcc
def test_plus_ptx_object_carries_ptx_and_without_it_none(tmp_path):
    from harness.build.nvcc import compile_unit

    plan, files, env = _plan("ptx_legacy", tmp_path)
    kernel = next(u for u in plan.units if u.kind == "kernel")
    assert "arch=compute_90,code=compute_90" in kernel.flags
    with_ptx = compile_unit(kernel, files, env)
    assert with_ptx.ok, with_ptx.reason
    assert any("sm_90" in ln for ln in _ptx_files(with_ptx.object_path))
    i = kernel.flags.index("arch=compute_90,code=compute_90")
    kernel.flags = kernel.flags[:i - 1] + kernel.flags[i + 1:]  # "+PTX" dropped: the SASS pair only
    without = compile_unit(kernel, files, env)
    assert without.ok and _ptx_files(without.object_path) == []


def test_own_package_data_is_named_as_the_package_s_own(tmp_path, monkeypatch):
    """Reading files is a warning either way; the own-path rule decides which: package data
    (a tuning table beside the code) is told apart from reads elsewhere."""
    import harness.checks.scan_source as scan_source
    from harness.checks.scan import check_scan

    ctx = CheckContext(case=None, text="", project_dir=COMPAT / "reads_own_data", level="text", device="cuda",
                       artifacts=tmp_path)
    own = check_scan(ctx)
    assert own.status == "pass", own.reason
    reasons = [f.reason for f in own.findings if f.severity == "warning"]
    assert any("its own package folder (package data" in r for r in reasons), reasons
    assert not any("opens files outside" in r for r in reasons), reasons
    monkeypatch.setattr(scan_source, "READ_CALLS", re.compile(r"(?!)"))  # no path is the package's own
    dropped = check_scan(ctx)
    reasons = [f.reason for f in dropped.findings if f.severity == "warning"]
    assert dropped.status == "pass" and any("opens files outside" in r for r in reasons), reasons


@needs_nvcc
def test_a_compile_past_the_time_limit_is_no_verdict_on_a_checked_project(tmp_path):
    """A maintainer's `check` whose unit runs past --timeout (paged-attention's heaviest units
    on a loaded 2-core machine) gets an error naming the limit, not a failure of the project."""
    import secrets
    import shutil

    project = tmp_path / "slow"
    shutil.copytree(COMPAT / "ptx_legacy", project)
    cu = next(project.rglob("*.cu"))
    cu.write_text(cu.read_text() + f"\n// {secrets.token_hex(8)}: a fresh unit, never in the cache\n")
    found = check_project(project, level="compile", timeout_s=0.05)
    result = _by_name(found.results)["compile"]
    assert result.status == "error", (result.status, result.reason)
    assert "checker's limit of 0.05 s" in result.reason and "--timeout" in result.reason
    assert exit_code(found.results, strict=False) == 3
