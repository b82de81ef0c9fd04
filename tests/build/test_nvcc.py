"""Compile-only path: toolchain discovery, kernel-builder flags, ptxas statistics,
error extraction, cache, timeouts, and the compile check on fixture projects."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from harness.checks.compile import check_compile
from harness.project.info import read_project
from harness.build import cuda_plan, nvcc, nvcc_output
from harness.project.capabilities import parse_capability
from harness.project.sources import source_bytes
from harness.build import toolchain
from harness.build.cache import BuildCache
from tests.cuda_helpers import FIXTURES, context, kernel_project, needs_nvcc

# ---------------------------------------------------------------- pure functions

@pytest.mark.parametrize("cap, arch, ptx", [
    ("9.0", "sm_90", False), ("9.0a", "sm_90a", False), ("9.0+PTX", "sm_90", True),
    ("8.0", "sm_80", False), ("10.0a", "sm_100a", False), ("12.0f", "sm_120f", False),
])
def test_parse_capability(cap, arch, ptx):
    target = parse_capability(cap)
    assert target is not None and target.arch == arch and target.ptx == ptx


@pytest.mark.parametrize("bad", ["sm_90", "90", "9", "compute_90", "9.0b", ""])
def test_parse_capability_rejects_forms_the_builder_does_not_know(bad):
    assert parse_capability(bad) is None


def test_gencode():
    assert parse_capability("9.0a").gencode == ["-gencode", "arch=compute_90a,code=sm_90a"]
    assert parse_capability("9.0+PTX").gencode == ["-gencode", "arch=compute_90,code=sm_90",
                                                   "-gencode", "arch=compute_90,code=compute_90"]


def test_strip_half_defines():
    flags = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__", "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
             "-D__CUDA_NO_HALF2_OPERATORS__", "-DKEEP=1", "--use_fast_math"]
    assert nvcc.strip_half_defines(flags) == ["-DKEEP=1", "--use_fast_math"]


PTXAS_SAMPLE = """\
ptxas info    : 0 bytes gmem
ptxas info    : Function properties for _Z6helperv
    48 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90a'
ptxas info    : Function properties for _Z3fooPf
    16 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 168 registers, used 1 barriers, 16 bytes cumulative stack size, 49152 bytes smem
ptxas info    : Function properties for _Z6helperv
    48 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Compiling entry function '_Z3barv' for 'sm_90a'
ptxas info    : Function properties for _Z3barv
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 4 registers, used 0 barriers
"""


def test_parse_ptxas_credits_entry_functions_only():
    stats = nvcc_output.parse_ptxas(PTXAS_SAMPLE)
    assert [(s.mangled, s.arch) for s in stats] == [("_Z3fooPf", "sm_90a"), ("_Z3barv", "sm_90a")]
    foo, bar = stats
    assert (foo.registers, foo.smem_bytes, foo.spill_stores, foo.spill_loads, foo.stack_bytes) == (168, 49152, 12, 4, 16)
    # helper()'s spills after foo must not be credited to foo
    assert (bar.registers, bar.smem_bytes, bar.spill_stores) == (4, 0, 0)
    assert foo.name in ("foo(float*)", "_Z3fooPf")  # demangled when c++filt exists


def test_first_errors_nvcc_and_gcc_formats():
    text = "\n".join([
        'src/k/a.cu(12): error: identifier "x" is undefined',
        "src/torch-ext/torch_binding.cpp:7:3: error: 'foo' was not declared in this scope",
        "src/k/a.cu(20): warning: unused variable",
        "src/k/b.cuh:3:10: fatal error: missing.h: No such file or directory",
        "ptxas fatal   : Unresolved extern function '_Z3bazv'",
    ])
    errors = nvcc_output.first_errors(text)
    assert [e.where() for e in errors] == ["k/a.cu:12", "torch-ext/torch_binding.cpp:7", "k/b.cuh:3", "ptxas"]
    assert errors[0].message == 'identifier "x" is undefined'
    assert nvcc_output.first_errors(text, limit=1)[0].file == "k/a.cu"


def _project_info(tmp_path: Path, body: str):
    (tmp_path / "build.toml").write_text(body)
    return read_project(tmp_path)


BASE_TOML = """
[general]
name = "demo"
version = 1
edition = 5
license = "MIT"
backends = ["cuda"]

[torch]
src = ["torch-ext/torch_binding.cpp", "torch-ext/torch_binding.h"]

[kernel.demo]
backend = "cuda"
depends = ["torch"]
src = ["demo_cuda/demo.cu", "demo_cuda/demo.cuh"]
"""


def test_plan_flags_follow_kernel_builder(tmp_path):
    project = _project_info(tmp_path, BASE_TOML + 'cuda-capabilities = ["9.0", "9.0a", "8.0"]\n'
                            'cuda-flags = ["-D__CUDA_NO_HALF_OPERATORS__", "--use_fast_math"]\n')
    includes = cuda_plan.Includes(torch=[Path("/t/include")], python=Path("/py"), math_headers=Path("/m"),
                             cuda=[Path("/cuda/include")])
    plan = cuda_plan.plan_cuda(project, ext_name="_demo_cuda_abc1234", includes=includes)
    assert not plan.errors
    assert ("kernel.demo.cuda-capabilities", "8.0 not compiled (checks compile H100 targets only)") in plan.notes
    kernel, binding = plan.units
    assert kernel.rel == "demo_cuda/demo.cu" and kernel.compiler == "nvcc"  # the .cuh is not a unit
    f = kernel.flags
    for flag in ("-std=c++17", "--expt-relaxed-constexpr", "-DENABLE_FP8", "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE",
                 "-DTORCH_EXTENSION_NAME=_demo_cuda_abc1234", "-Ikg_include", "-I/t/include", "-I/m",
                 "--use_fast_math"):
        assert flag in f
    assert " ".join(f).count("-gencode arch=compute_90,code=sm_90 ") == 1
    assert "arch=compute_90a,code=sm_90a" in f and "arch=compute_80,code=sm_80" not in f
    assert "-D__CUDA_NO_HALF_OPERATORS__" not in f
    assert f[-2:] == ["-Xptxas", "-v"]
    assert kernel.arches == ["sm_90", "sm_90a"]
    assert binding.rel == "torch-ext/torch_binding.cpp" and binding.compiler == "cxx"
    assert "-DCUDA_KERNEL" in binding.flags and "-I/cuda/include" in binding.flags
    assert "-DTORCH_EXTENSION_NAME=_demo_cuda_abc1234" in binding.flags


def test_plan_errors(tmp_path):
    project = _project_info(tmp_path, BASE_TOML + 'cuda-capabilities = ["sm_90"]\ncuda-flags = ["-ccbin", "/x"]\n')
    plan = cuda_plan.plan_cuda(project, ext_name="_x", includes=cuda_plan.Includes())
    reasons = " | ".join(r for _, r in plan.errors)
    assert "'sm_90' is not a capability the builder understands" in reasons
    assert not plan.units


def test_plan_requested_capability_missing(tmp_path):
    project = _project_info(tmp_path, BASE_TOML + 'cuda-capabilities = ["9.0"]\n')
    plan = cuda_plan.plan_cuda(project, ext_name="_x", includes=cuda_plan.Includes(), requested=["9.0a"])
    assert any("the case requires 9.0a" in r for _, r in plan.errors)
    ok = cuda_plan.plan_cuda(project, ext_name="_x", includes=cuda_plan.Includes(), requested=["9.0"])
    assert not ok.errors


def test_plan_default_capabilities_and_denied_flags(tmp_path):
    project = _project_info(tmp_path, BASE_TOML + 'cuda-flags = ["-o", "/etc/passwd"]\n')
    plan = cuda_plan.plan_cuda(project, ext_name="_x", includes=cuda_plan.Includes())
    assert any("builder's default list" in r for _, r in plan.notes)
    assert any("'-o' is not allowed" in r for _, r in plan.errors)
    assert plan.units[0].arches == ["sm_90"]


def test_default_parallel_bounded():
    import os

    assert 1 <= nvcc.default_parallel() <= (os.cpu_count() or 1)


# ---------------------------------------------------------------- toolchain and headers

@needs_nvcc
def test_toolchain_finds_tools_and_says_where():
    found = toolchain.find_nvcc()
    assert found is not None and found.path.exists() and found.source in ("PATH", "CUDA_HOME", "CUDA_PATH") + (
        "pypi:nvidia-cuda-nvcc",)
    assert toolchain.release_of(toolchain.tool_version(found.path))
    home = toolchain.cuda_home_of(found.path)
    assert home is not None and (home / "bin").is_dir()
    assert toolchain.cuda_include_dirs(found.path)
    info = toolchain.torch_info()
    assert info is not None and (info.include_dirs[0] / "ATen" / "ATen.h").is_file()
    assert "nvcc" in toolchain.describe()


def test_cuobjdump_found_from_pypi_package():
    tool = toolchain.find_cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not installed (pip install nvidia-cuda-cuobjdump)")
    assert tool.path.is_file()


def test_header_extraction_keeps_only_include_and_refuses_escapes(tmp_path):
    from harness.build.headers import _extract_includes

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("nvidia/cu13/include/cublas_v2.h", "// header")
        zf.writestr("nvidia/cu13/include/sub/x.h", "// nested")
        zf.writestr("nvidia/cu13/lib/libcublas.so.13", b"\0" * 100)
        zf.writestr("nvidia/cu13/include/../../evil.h", "// escape")
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(buf.getvalue())
    dest = tmp_path / "out"
    assert _extract_includes(wheel, dest) == 2
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["cublas_v2.h", "sub/x.h"]
    assert not (tmp_path / "evil.h").exists()


# ---------------------------------------------------------------- real compiles (kernel-only, ~1 s each)

@needs_nvcc
def test_compile_check_passes_with_stats_and_caches(tmp_path):
    project = kernel_project(tmp_path / "p", ["add.cu"], caps=["9.0", "9.0a"])
    ctx = context(project, tmp_path / "a1")
    result = check_compile(ctx)
    assert result.status == "pass", result.reason
    assert result.metrics["arches"] == "sm_90,sm_90a"
    assert result.metrics["kernels"] == 4 and result.metrics["max_smem_bytes"] == 1024
    keys = [f.key for f in result.findings]
    assert any(k.startswith("reverse_kernel") and k.endswith("[sm_90a]") for k in keys)
    objects = ctx.state["cuda_objects"]
    assert len(objects) == 1 and Path(objects[0]["path"]).is_file() and objects[0]["arches"] == ["sm_90", "sm_90a"]
    assert Path(result.log_path).read_text().count("ptxas info") > 0
    # Same content in another folder: a cache hit.
    again = check_compile(context(kernel_project(tmp_path / "q", ["add.cu"], caps=["9.0", "9.0a"]), tmp_path / "a2"))
    assert again.status == "pass" and again.metrics["cache_hit"] is True


@needs_nvcc
def test_compile_error_is_located_and_cached(tmp_path):
    project = kernel_project(tmp_path / "p", ["add.cu", "broken.cu"], caps=["9.0"])
    first = check_compile(context(project, tmp_path / "a1"))
    assert first.status == "fail"
    assert first.reason.startswith("k/broken.cu:4: ") and "undeclared_value" in first.reason
    log_text = Path(first.log_path).read_text()
    assert "undeclared_value" in log_text and "FAILED" in log_text
    second = check_compile(context(project, tmp_path / "a2"))
    assert second.status == "fail" and second.metrics["units_cached"] == 2  # the deterministic error was cached


@needs_nvcc
def test_spills_are_warnings(tmp_path):
    result = check_compile(context(kernel_project(tmp_path / "p", ["spill.cu"], caps=["9.0"]), tmp_path / "a"))
    assert result.status == "pass"
    assert result.metrics["spill_bytes"] > 0
    assert any(f.severity == "warning" and "spill" in f.reason for f in result.findings)


@needs_nvcc
def test_timeout_kills_and_is_not_cached(tmp_path):
    project = kernel_project(tmp_path / "p", ["add.cu"], caps=["9.0"])
    info = read_project(project)
    plan = cuda_plan.plan_cuda(info, ext_name="_t", includes=cuda_plan.Includes())
    files = source_bytes(project)
    # A flag unique to this test keeps its key apart from the other tests' entries.
    unit = plan.units[0]
    unit.flags = [*unit.flags, "-DKG_TIMEOUT_TEST"]
    env = nvcc.BuildEnv(nvcc=toolchain.find_nvcc().path, cxx=None, versions={}, timeout_s=0.05, sandbox="local")
    cache = BuildCache("compile-timeout-test", root=tmp_path / "cache")
    result = nvcc.compile_unit(unit, files, env, cache=cache)
    assert not result.ok and result.timed_out and "timed out" in result.reason
    assert cache.lookup(nvcc.unit_key(unit, files, env)) is None


def test_no_nvcc_is_a_skip_not_a_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "find_nvcc", lambda: None)
    result = check_compile(context(kernel_project(tmp_path / "p", ["add.cu"]), tmp_path / "a"))
    assert result.status == "skip" and "nvcc not found" in result.reason


def test_cpu_only_project_on_cuda_device_skips(tmp_path):
    (tmp_path / "build.toml").write_text('[general]\nname = "c"\nversion = 1\nedition = 5\nlicense = "MIT"\n'
                                         'backends = ["cpu"]\n[torch]\nsrc = []\n[kernel.c]\nbackend = "cpu"\n'
                                         'depends = ["torch"]\nsrc = []\n')
    result = check_compile(context(tmp_path, tmp_path / "a"))
    assert result.status == "skip" and "no CUDA kernel" in result.reason


# ---------------------------------------------------------------- --device cpu: the CPU build is part of compile

def _cpu_project(tmp_path: Path) -> Path:
    """CPU kernel only: no nvcc work, so these tests exercise the CPU branch alone."""
    (tmp_path / "build.toml").write_text('[general]\nname = "c"\nversion = 1\nedition = 5\nlicense = "MIT"\n'
                                         'backends = ["cpu"]\n[torch]\nsrc = []\n[kernel.c]\nbackend = "cpu"\n'
                                         'depends = ["torch"]\nsrc = ["c.cpp"]\n')
    return tmp_path


def test_cpu_device_reports_a_failed_cpu_build(tmp_path, monkeypatch):
    import harness.build.cpu_extension as build_cpu

    calls = []

    def fake_build(project, *, artifacts, sandbox, timeout_s):  # stands in for the real builder
        calls.append(project.name)
        return build_cpu.CpuBuild(ok=False, so_path=None, package_dir=None, log="", reason="g++ exited 1")

    monkeypatch.setattr(build_cpu, "build_cpu_extension", fake_build)
    ctx = context(_cpu_project(tmp_path), tmp_path / "a", device="cpu")
    result = check_compile(ctx)
    assert calls == ["c"]
    assert result.status == "fail" and result.reason == "cpu build: g++ exited 1" and result.device == "cpu"
    assert ctx.state["cpu_build"].reason == "g++ exited 1"


def test_cpu_device_without_the_cpu_builder_is_a_skip(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "harness.build.cpu_extension", None)  # as if the module were absent
    result = check_compile(context(_cpu_project(tmp_path), tmp_path / "a", device="cpu"))
    assert result.status == "skip"
    assert "no CUDA kernel" in result.reason and "CPU build not available" in result.reason


@needs_nvcc
def test_uncached_failure_keeps_its_log_and_no_temp_folder(tmp_path):
    project = kernel_project(tmp_path / "p", ["add.cu"], caps=["9.0"])
    unit = cuda_plan.plan_cuda(read_project(project), ext_name="_t", includes=cuda_plan.Includes()).units[0]
    env = nvcc.BuildEnv(nvcc=toolchain.find_nvcc().path, cxx=None, versions={}, timeout_s=0.05, sandbox="local")
    cache = BuildCache("c", root=tmp_path / "cache")
    result = nvcc.compile_unit(unit, source_bytes(project), env, cache=cache)
    assert result.timed_out and Path(result.log_path).is_file()
    assert "killed after" in Path(result.log_path).read_text()
    assert not [p for p in cache.root.rglob(".*") if p.is_dir()]  # no half-built folder left behind


def test_unsupplied_dependency_is_a_skip_that_names_it(tmp_path):
    project = kernel_project(tmp_path / "p", ["add.cu"], caps=["9.0"])
    toml = (project / "build.toml").read_text().replace("depends = []", 'depends = ["torch", "cutlass_4_0"]')
    (project / "build.toml").write_text(toml)
    result = check_compile(context(project, tmp_path / "a"))
    assert result.status == "skip" and "cutlass_4_0" in result.reason
