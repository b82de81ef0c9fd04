"""harness/build/cpu_extension.py: CPU kernels + torch binding built with g++ into a loadable, cached package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.project.info import read_project
from harness.build.cpu_extension import NO_CPU_KERNEL, build_cpu_extension

FIXTURE = Path(__file__).parents[1] / "fixtures" / "projects" / "misbehave"

pytestmark = pytest.mark.slow


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(FIXTURE, dest)
    return dest


def test_builds_package_and_caches(tmp_path: Path) -> None:
    project = read_project(FIXTURE)
    first = build_cpu_extension(project, artifacts=tmp_path / "a")
    assert first.ok, first.log[-2000:]
    assert first.ext_name.startswith("_misbehave_cpu_")
    assert first.so_path is not None and first.so_path.is_file()
    assert first.package_dir is not None and first.package_dir.name == "misbehave"
    ops = (first.package_dir / "_ops.py").read_text()
    assert f"torch.ops.{first.ext_name}" in ops and f'"{first.ext_name}::' in ops
    assert (first.package_dir / "__init__.py").is_file()
    assert "-DCPU_KERNEL" in first.log and f"-DTORCH_EXTENSION_NAME={first.ext_name}" in first.log
    again = build_cpu_extension(project, artifacts=tmp_path / "b")
    assert again.ok and again.cache_hit and again.so_path == first.so_path
    assert (tmp_path / "b" / "build_cpu.log").is_file()


def test_no_cpu_kernel(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    text = (root / "build.toml").read_text().replace('backend = "cpu"', 'backend = "cuda"')
    (root / "build.toml").write_text(text)
    result = build_cpu_extension(read_project(root), artifacts=tmp_path / "a")
    assert not result.ok and result.reason == NO_CPU_KERNEL


def test_missing_source_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "scale_cpu" / "scale.cpp").unlink()
    result = build_cpu_extension(read_project(root), artifacts=tmp_path / "a")
    assert not result.ok and "scale_cpu/scale.cpp" in result.reason


def test_compile_error_is_a_result_with_the_compiler_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "scale_cpu" / "scale.cpp").write_text("this is not C++;\n")
    (root / "torch-ext" / "torch_binding.cpp").write_text("neither is this;\n")  # fail fast: no torch headers
    result = build_cpu_extension(read_project(root), artifacts=tmp_path / "a")
    assert not result.ok
    assert result.reason.startswith("g++ failed:") and "scale.cpp" in result.reason and "error" in result.reason
    assert result.log_path is not None and "not C++" in result.log_path.read_text()
    # Failures are not cached: a second try compiles again rather than hitting the cache.
    assert not build_cpu_extension(read_project(root), artifacts=tmp_path / "b").cache_hit
