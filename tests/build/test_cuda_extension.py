"""The link step that turns the compile check's CUDA objects into a loadable extension.

A real link against CUDA torch needs a GPU host; here the command is checked and the
objects of kernels_reference/rmsnorm (compiled for sm_90 by the real compile check) are
linked against the CPU torch's libraries, which proves the objects, the package layout
and the module entry point. Loading it needs libtorch_cuda: GPU only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.checks.base import CheckContext, GradeOptions
from harness.checks.compile import check_compile
from harness.project.info import read_project
from harness.build.cuda_extension import TORCH_CUDA_LIBS, link_command, link_cuda_extension

REPO = Path(__file__).resolve().parents[2]


def test_link_command_names_torch_cuda_libraries_and_rpaths() -> None:
    cmd = link_command(["obj/a.o", "obj/b.o"], "pkg/x/_x_cuda_1.so", torch_lib=Path("/t/lib"),
                       cuda_lib=Path("/cuda/lib64"))
    assert cmd[:3] == ["g++", "-shared", "-fPIC"] and "obj/a.o" in cmd and cmd[cmd.index("-o") + 1].endswith(".so")
    for lib in TORCH_CUDA_LIBS:
        assert f"-l{lib}" in cmd
    assert "-lcudart" in cmd and "-Wl,-rpath,/t/lib" in cmd and "-Wl,-rpath,/cuda/lib64" in cmd


@pytest.mark.slow
def test_rmsnorm_objects_link_into_a_package(tmp_path: Path) -> None:
    from harness.build.toolchain import cuda_home_of, find_nvcc, torch_info

    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("no nvcc")
    project_dir = REPO / "kernels_reference/rmsnorm"
    ctx = CheckContext(case=None, text="", project_dir=project_dir, level="compile", device="cuda",
                       artifacts=tmp_path, options=GradeOptions(sandbox="local"))
    result = check_compile(ctx)
    assert result.status == "pass", result.reason
    units = ctx.state["compile_units"]
    assert "cuda_build" not in ctx.state  # linking happens only at --level run on a GPU host
    ext = ctx.state["cuda_ext_name"]  # the name the binding objects were compiled with
    torch_lib = torch_info().include_dirs[0].parent / "lib"
    cpu_libs = tuple(lib for lib in TORCH_CUDA_LIBS if "cuda" not in lib)  # the CPU wheel has no CUDA libs
    build = link_cuda_extension(read_project(project_dir), units, ext, artifacts=tmp_path / "link",
                                torch_lib=torch_lib, cuda_home=cuda_home_of(nvcc.path), sandbox="local",
                                libs=cpu_libs)
    assert build.ok, build.reason
    pkg = build.package_dir
    so = pkg / f"{ext}.so"
    assert (pkg / "__init__.py").is_file() and so.is_file()
    assert f"torch.ops.{ext}" in (pkg / "_ops.py").read_text()
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True).stdout
    assert f"PyInit_{ext}" in symbols
    assert "rms_norm" in symbols  # the launcher from the CUDA object is in the library
    again = link_cuda_extension(read_project(project_dir), units, ext, artifacts=tmp_path / "link2",
                                torch_lib=torch_lib, cuda_home=cuda_home_of(nvcc.path), sandbox="local",
                                libs=cpu_libs)
    assert again.ok and again.cache_hit


def test_link_refuses_when_a_unit_failed(tmp_path: Path) -> None:
    project = read_project(REPO / "kernels_reference/rmsnorm")
    build = link_cuda_extension(project, [{"ok": False, "object_path": None}], "_x", artifacts=tmp_path,
                                torch_lib=tmp_path, cuda_home=None)
    assert not build.ok and "not every unit compiled" in build.reason
