"""The nvcc plan against kernel-builder's templates (issue 25): which build.toml settings reach
which units, the builder's defines, the stable ABI, tvm-ffi, unsupplied dependencies and the
deny-list. Pure: no compiler runs here (tests/checks/test_compat_projects.py compiles)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build import cuda_plan
from harness.project.info import read_project

COMPAT = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "compat"
INCLUDES = cuda_plan.Includes(torch=[Path("/t/include")], python=Path("/py"), math_headers=Path("/m"),
                              cuda=[Path("/cuda/include")], torch_version="2.13.0+cpu")


def _plan(name: str, includes: cuda_plan.Includes = INCLUDES, ext: str = "_x_cuda_abc1234") -> cuda_plan.Plan:
    return cuda_plan.plan_cuda(read_project(COMPAT / name), ext_name=ext, includes=includes)


def _units(plan: cuda_plan.Plan) -> dict[str, list[str]]:
    return {u.rel: u.flags for u in plan.units}


def _toml(tmp_path: Path, text: str):
    (tmp_path / "build.toml").write_text(text)
    return read_project(tmp_path)


def test_every_build_toml_setting_reaches_only_the_units_kernel_builder_gives_it():
    plan = _plan("cxx_flags_canary")
    assert not plan.errors and plan.needs_torch and not plan.needs_tvm_ffi
    units = _units(plan)
    cu, host, binding = units["scale_cuda/scale.cu"], units["scale_cuda/scale_host.cpp"], units[
        "torch-ext/torch_binding.cpp"]
    where = {flag: sorted(rel for rel, flags in units.items() if flag in flags) for flag in (
        "-DKG_BINDING_CANARY=1", "-DKG_KERNEL_CUDA_CANARY=1", "-DKG_KERNEL_CXX_CANARY=1",
        "-Isrc/torch-ext/include", "-Isrc/scale_cuda/include")}
    assert where == {
        "-DKG_BINDING_CANARY=1": ["torch-ext/torch_binding.cpp"],  # [torch] cxx-flags: binding C++ only
        "-DKG_KERNEL_CUDA_CANARY=1": ["scale_cuda/scale.cu"],  # cuda-flags: the kernel's .cu
        "-DKG_KERNEL_CXX_CANARY=1": ["scale_cuda/scale_host.cpp"],  # cxx-flags: the kernel's C++
        "-Isrc/torch-ext/include": ["torch-ext/torch_binding.cpp"],  # [torch] include: the binding
        "-Isrc/scale_cuda/include": ["scale_cuda/scale.cu", "scale_cuda/scale_host.cpp"],  # all its units
    }
    for flags in (cu, host, binding):  # the builder's defines reach every unit
        for define in ("-DCUDA_KERNEL", "-DUSE_CUDA=1", "-DTORCH_EXTENSION_NAME=_x_cuda_abc1234"):
            assert define in flags
        assert not any(f.startswith("-DTORCH_TARGET_VERSION") for f in flags)
    assert "-DENABLE_FP8" in cu and "--expt-relaxed-constexpr" in cu and "-Ikg_include" in binding


def test_plus_ptx_builds_sass_and_ptx_for_hopper():
    plan = _plan("ptx_legacy")
    kernel = next(u for u in plan.units if u.kind == "kernel")
    text = " ".join(kernel.flags)
    assert "-gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90" in text
    assert kernel.arches == ["sm_90"] and "arch=compute_80" not in text
    assert ("kernel.negate.cuda-capabilities", "8.0 not compiled (checks compile H100 targets only)") in plan.notes


def test_stable_abi_targets_its_torch_version_on_every_unit():
    plan = _plan("stable_abi")
    assert not plan.errors and plan.units
    for unit in plan.units:
        assert "-DTORCH_TARGET_VERSION=0x20b000000000000" in unit.flags, unit.rel  # (2 << 56) | (11 << 48)


@pytest.mark.parametrize("table, cuda", [('"2.12"', "0x20c000000000000"), ('{ cpu = "2.11" }', None),
                                         ('{ cpu = "2.9", cuda = "2.10" }', "0x20a000000000000")])
def test_stable_abi_is_one_version_or_a_table_per_backend(tmp_path, table, cuda):
    text = (COMPAT / "stable_abi" / "build.toml").read_text().replace(
        '[torch.stable-abi]\ncuda = "2.11"\n', "").replace("[torch]\n", f"[torch]\nstable-abi = {table}\n")
    plan = cuda_plan.plan_cuda(_toml(tmp_path, text), ext_name="_x", includes=INCLUDES)
    found = {f.split("=", 1)[1] for u in plan.units for f in u.flags if f.startswith("-DTORCH_TARGET_VERSION=")}
    assert found == ({cuda} if cuda else set())


def test_stable_abi_newer_than_the_installed_torch_is_a_skip_not_a_failure():
    old = cuda_plan.Includes(torch_version="2.10.1+cpu")
    plan = _plan("stable_abi", old)
    assert not plan.units and not plan.errors
    assert plan.unsupplied and "targets torch 2.11" in plan.unsupplied[0][1]


def test_torch_bounds_outside_the_installed_torch_are_warnings(tmp_path):
    text = (COMPAT / "ptx_legacy" / "build.toml").read_text().replace("[torch]\n", '[torch]\nmaxver = "2.12"\n'
                                                                      'minver = "2.12"\n')
    plan = cuda_plan.plan_cuda(_toml(tmp_path, text), ext_name="_x", includes=INCLUDES)
    assert plan.units and not plan.errors
    assert [k for k, _ in plan.warnings] == ["torch.maxver"] and "newer than 2.12" in plan.warnings[0][1]


def test_tvm_ffi_units_get_its_headers_and_name_and_none_of_torchs():
    includes = cuda_plan.Includes(tvm_ffi=Path("/tvm/include"), cuda=[Path("/cuda/include")])
    plan = _plan("tvm_ffi_flags", includes, ext="_clamp_cuda_1")
    assert not plan.errors and plan.needs_tvm_ffi and not plan.needs_torch
    units = _units(plan)
    assert sorted(units) == ["clamp_cuda/clamp.cu", "tvm-ffi-ext/tvm_ffi_binding.cpp"]
    for flags in units.values():
        assert "-DTVM_FFI_EXTENSION_NAME=_clamp_cuda_1" in flags and "-DCUDA_KERNEL" in flags
        assert "-I/tvm/include" in flags
        for torch_only in ("-DUSE_CUDA=1", "-DENABLE_FP8", "--expt-relaxed-constexpr", "-Ikg_include",
                           "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE"):
            assert torch_only not in flags
        assert not any(f.startswith("-DTORCH_EXTENSION_NAME") for f in flags)
    assert "-DKG_TVM_BINDING_CANARY" in units["tvm-ffi-ext/tvm_ffi_binding.cpp"]
    assert "-DKG_TVM_BINDING_CANARY" not in units["clamp_cuda/clamp.cu"]
    assert "-DKG_TVM_KERNEL_CANARY=1" in units["clamp_cuda/clamp.cu"]
    assert "-Isrc/clamp_cuda/include" in units["clamp_cuda/clamp.cu"]


def test_a_cu_binding_gets_no_cxx_flags(tmp_path):
    text = (COMPAT / "ptx_legacy" / "build.toml").read_text().replace(
        '"torch-ext/torch_binding.cpp"', '"torch-ext/torch_binding.cu"').replace(
        "[torch]\n", '[torch]\ncxx-flags = ["-DONLY_CXX"]\ninclude = ["torch-ext/inc"]\n')
    plan = cuda_plan.plan_cuda(_toml(tmp_path, text), ext_name="_x", includes=INCLUDES)
    binding = next(u for u in plan.units if u.kind == "binding")
    assert binding.compiler == "nvcc" and "-DONLY_CXX" not in binding.flags and "-Isrc/torch-ext/inc" in binding.flags


def test_every_cuda_kernel_needing_an_unsupplied_dependency_builds_nothing(tmp_path):
    """cutlass-gemm's shape: the binding alone is not what kernel-builder builds, so compile skips."""
    text = (COMPAT / "ptx_legacy" / "build.toml").read_text().replace('depends = ["torch"]',
                                                                      'depends = ["torch", "cutlass_3_6"]')
    plan = cuda_plan.plan_cuda(_toml(tmp_path, text), ext_name="_x", includes=INCLUDES)
    assert not plan.units and not plan.errors
    assert plan.unsupplied == [("kernel.negate.depends", "not compiled: needs a dependency this checker cannot "
                                                         "supply: cutlass_3_6")]


def test_a_cutlass_release_on_pypi_is_supplied_and_others_stay_unsupplied(tmp_path):
    text = (COMPAT / "ptx_legacy" / "build.toml").read_text()
    project = _toml(tmp_path, text.replace('depends = ["torch"]', 'depends = ["torch", "cutlass_3_6"]'))
    probe = cuda_plan.plan_cuda(project, ext_name="_x", includes=INCLUDES)
    assert probe.wanted_deps == ["cutlass_3_6"] and not probe.units  # the compile check installs, then plans again
    supplied = cuda_plan.Includes(**{**INCLUDES.__dict__, "deps": {"cutlass_3_6": Path("/cutlass/include")}})
    plan = cuda_plan.plan_cuda(project, ext_name="_x", includes=supplied)
    assert not plan.unsupplied and len(plan.units) == 2
    assert all("-I/cutlass/include" in u.flags for u in plan.units)  # include_directories(): every unit
    newer = _toml(tmp_path, text.replace('depends = ["torch"]', 'depends = ["torch", "cutlass_4_0"]'))
    later = cuda_plan.plan_cuda(newer, ext_name="_x", includes=supplied)
    assert later.wanted_deps == [] and later.unsupplied and "cutlass_4_0" in later.unsupplied[0][1]


@pytest.mark.parametrize("where, flag", [
    ("kernel-cxx", "-B/tmp/evil"), ("kernel-cxx", "-fplugin=/tmp/x.so"), ("binding", "-wrapper"),
    ("binding", "@/tmp/options"), ("kernel-cuda", "-Xcompiler=-B/tmp/evil"), ("kernel-cuda", "--specs=/tmp/s"),
    ("binding", "-Wl,-L/tmp"),
])
def test_every_build_toml_flag_goes_through_the_deny_list(tmp_path, where, flag):
    text = (COMPAT / "cxx_flags_canary" / "build.toml").read_text()
    old = {"kernel-cxx": 'cxx-flags = ["-DKG_KERNEL_CXX_CANARY=1"]', "binding": 'cxx-flags = ["-DKG_BINDING_CANARY=1"]',
           "kernel-cuda": 'cuda-flags = ["-DKG_KERNEL_CUDA_CANARY=1"]'}[where]
    plan = cuda_plan.plan_cuda(_toml(tmp_path, text.replace(old, old[:-1] + f', "{flag}"]')), ext_name="_x",
                               includes=INCLUDES)
    assert any(f"flag {flag!r} is not allowed" in r for _, r in plan.errors), plan.errors
    assert not any(flag in u.flags for u in plan.units)


def test_project_info_reads_the_binding_section_of_either_frontend():
    torch = read_project(COMPAT / "cxx_flags_canary")
    assert (torch.framework, torch.binding_cxx_flags, torch.binding_include) == (
        "torch", ["-DKG_BINDING_CANARY=1"], ["torch-ext/include"])
    tvm = read_project(COMPAT / "tvm_ffi_flags")
    assert tvm.framework == "tvm-ffi" and tvm.binding_src == ["tvm-ffi-ext/tvm_ffi_binding.cpp"]
    assert tvm.python_package_dir == COMPAT / "tvm_ffi_flags" / "tvm-ffi-ext" / "clamp_tvm_ffi_flags"
    assert read_project(COMPAT / "stable_abi").stable_abi_for("cuda") == "2.11"
    assert read_project(COMPAT / "stable_abi").stable_abi_for("cpu") is None
    assert read_project(COMPAT / "triton_only").framework == "torch-noarch"


_TWO_VARIANTS = """[general]
name = "variants"
backends = ["cuda"]

[torch]
src = ["torch-ext/torch_binding.cpp"]

[kernel.attn_sm90]
backend = "cuda"
cuda-capabilities = ["9.0a"]
src = ["attn_sm90/attn.cu"]

[kernel.attn_sm80]
backend = "cuda"
cuda-capabilities = ["8.0"]
src = ["attn_sm80/attn.cu"]

[kernel.attn_sm100]
backend = "cuda"
cuda-capabilities = ["10.0a", "12.0a", "99999.0"]
src = ["attn_sm100/attn.cu"]
"""


def test_a_kernel_with_no_h100_target_is_compiled_for_its_own_newest_one(tmp_path):
    """kernel-builder builds every variant (flash-attn3's sm80 one, an sm100 one), and the binding
    links them all: a check compiles each, the H100 ones for sm_90, the others for their own."""
    plan = cuda_plan.plan_cuda(_toml(tmp_path, _TWO_VARIANTS), ext_name="_v", includes=INCLUDES)
    assert not plan.errors, plan.errors
    arches = {u.kernel: u.arches for u in plan.units if u.kind == "kernel"}
    assert arches == {"attn_sm90": ["sm_90a"], "attn_sm80": ["sm_80"], "attn_sm100": ["sm_120a"]}
    notes = dict(plan.notes)
    assert "compiled for sm_80 only" in notes["kernel.attn_sm80.cuda-capabilities"]
    # ... but a case that asks for 9.0 gets an error for the kernel that cannot run on an H100.
    strict = cuda_plan.plan_cuda(_toml(tmp_path, _TWO_VARIANTS), ext_name="_v", includes=INCLUDES,
                                 requested=["9.0"])
    assert {k for k, _ in strict.errors} == {"kernel.attn_sm80.cuda-capabilities",
                                             "kernel.attn_sm100.cuda-capabilities"}
