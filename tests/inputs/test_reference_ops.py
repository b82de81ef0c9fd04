"""The reference kernel projects (kernels_reference/<op>/) are sound: their build.toml is
accepted by the kernels parser, reference.py honours the DESIGN contract, and each op's
CPU twin, built for real against the installed torch, matches the PyTorch reference on
every test shape and dtype, called through the project's own Python package.

Each CPU twin is built once per content hash by harness.build.cpu_extension (a ~30 s g++ run in the
sandbox; the run check builds the same way, so they share the cache: KERNELGRADE_CACHE, else
the platform cache dir); the test process only loads the finished .so.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from harness.project.info import read_project

REF_ROOT = Path(__file__).resolve().parents[2] / "kernels_reference"
OPS = sorted(p.name for p in REF_ROOT.iterdir() if (p / "reference.py").is_file())
DEFAULT_TOL = {"float32": (1e-4, 1e-4), "bfloat16": (1e-2, 1e-2), "float16": (1e-2, 1e-2)}
BUILD_TIMEOUT_S = 900


def load_reference(op: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"kgref_reference_{op}", REF_ROOT / op / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cpu_package(tmp_path_factory):
    """op -> the op's Python package (torch-ext/<name>/ + generated _ops.py + the built .so),
    built by harness.build.cpu_extension (the run check's own build path, so the cache is shared)."""
    from harness.build.cpu_extension import build_cpu_extension

    loaded: dict[str, ModuleType] = {}

    def get(op: str) -> ModuleType:
        if op in loaded:
            return loaded[op]
        built = build_cpu_extension(read_project(REF_ROOT / op), artifacts=tmp_path_factory.mktemp(f"build_{op}"),
                                    timeout_s=BUILD_TIMEOUT_S)
        assert built.ok and built.package_dir is not None, f"CPU build of {op} failed: {built.reason}\n{built.log}"
        mod_name = f"kgref_pkg_{op}"
        spec = importlib.util.spec_from_file_location(mod_name, built.package_dir / "__init__.py",
                                                      submodule_search_locations=[str(built.package_dir)])
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
        loaded[op] = module
        return module

    return get


def test_there_are_reference_ops():
    assert set(OPS) >= {"rmsnorm", "softmax", "gelu_tanh", "geglu", "layernorm_adaln", "residual_rmsnorm",
                        "rotary", "matmul"}


@pytest.mark.parametrize("op", OPS)
def test_build_toml_accepted_by_kernels_parser(op):
    import kernels._rust as kernels_rust  # the parser the builder itself uses (kernels pinned)

    build = kernels_rust.Build.open(str(REF_ROOT / op))
    backends = sorted(str(b).lower() for b in build.general.backends)
    assert any("cuda" in b for b in backends) and any("cpu" in b for b in backends), backends
    project = read_project(REF_ROOT / op)
    assert project.edition == 5
    cuda, cpu = project.kernels_for("cuda"), project.kernels_for("cpu")
    assert cuda and cpu
    assert all(k.cuda_capabilities == ["9.0"] for k in cuda)
    for rel in [s for k in project.kernels for s in k.src] + project.torch_src:
        assert (REF_ROOT / op / rel).is_file(), rel
    assert (project.python_package_dir / "__init__.py").is_file()
    # kernel-builder supplies these; a project must not ship them.
    assert not list((REF_ROOT / op).rglob("registration.h"))
    assert not list((REF_ROOT / op).rglob("_ops.py"))


@pytest.mark.parametrize("op", OPS)
def test_reference_contract(op):
    ref = load_reference(op)
    assert isinstance(ref.API, str) and ref.API.isidentifier()
    assert ref.SHAPES and ref.TEST_SHAPES and ref.DTYPES
    for shape in ref.TEST_SHAPES:  # CI budget: every tensor of a test shape stays <= 1M elements
        made = ref.make_inputs(shape, ref.DTYPES[0], torch.Generator().manual_seed(0))
        assert all(t.numel() <= 1 << 20 for t in made if isinstance(t, torch.Tensor)), shape
    # Some shape must have a last dim that is not a multiple of any vector width.
    assert any(s[-1] % 8 for s in ref.SHAPES) and any(s[-1] % 8 for s in ref.TEST_SHAPES)
    for dtype in ref.DTYPES:
        for shape in ref.SHAPES:
            assert ref.bytes_moved(shape, dtype) > 0 and ref.flops(shape, dtype) > 0
    gen = torch.Generator().manual_seed(0)
    args = ref.make_inputs(ref.TEST_SHAPES[0], ref.DTYPES[0], gen)
    again = ref.make_inputs(ref.TEST_SHAPES[0], ref.DTYPES[0], torch.Generator().manual_seed(0))
    for a, b in zip(args, again):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), "make_inputs must be a function of the generator's seed"
    out = ref.reference(*args)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert torch.isfinite(o.float()).all()
        assert o.float().abs().max() > 0, "reference output is all zeros on its own inputs"


def _cases():
    for op in OPS:
        ref = load_reference(op)
        for dtype in ref.DTYPES:
            yield pytest.param(op, dtype, id=f"{op}-{dtype}")


@pytest.mark.slow
@pytest.mark.parametrize(("op", "dtype"), list(_cases()))
def test_cpu_twin_matches_reference(op, dtype, cpu_package):
    ref = load_reference(op)
    pkg = cpu_package(op)
    fn = getattr(pkg, ref.API)
    atol, rtol = getattr(ref, "TOLERANCE", DEFAULT_TOL).get(dtype, DEFAULT_TOL[dtype])
    for i, shape in enumerate(ref.TEST_SHAPES):
        gen = torch.Generator().manual_seed(1000 + i)
        args = ref.make_inputs(shape, dtype, gen)
        clones = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        expected = ref.reference(*args)
        got = fn(*args)
        exp_t = expected if isinstance(expected, tuple) else (expected,)
        got_t = got if isinstance(got, tuple) else (got,)
        assert len(got_t) == len(exp_t)
        for g, e in zip(got_t, exp_t):
            assert g.dtype == e.dtype and g.shape == e.shape, (shape, g.dtype, g.shape)
            err = (g.float() - e.float()).abs().max().item()
            assert torch.allclose(g.float(), e.float(), atol=atol, rtol=rtol), (
                f"{op} {dtype} {shape}: max abs err {err:.3g}")
        for a, c in zip(args, clones):  # the op must not modify its inputs
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, c), f"{op} {dtype} {shape}: input modified"


# --- kernelgrade check over the projects: reference ops pass compile, bad projects fail ---------

BAD_ROOT = REF_ROOT / "bad"
BAD = sorted(p.name for p in BAD_ROOT.iterdir() if (p / "EXPECTED.txt").is_file()) if BAD_ROOT.is_dir() else []


def _check_json(project: Path, level: str, capsys) -> tuple[int, dict]:
    import json

    from harness.cli.main import main

    code = main(["check", str(project), "--level", level, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _needs_nvcc() -> None:
    from harness.build.toolchain import find_nvcc

    if find_nvcc() is None:
        pytest.skip("nvcc not found: compile-level checks cannot run")


def test_bad_projects_present():
    assert set(BAD) >= {"malformed_build_toml", "sm_90_capability", "missing_src", "compile_error",
                        "empty_kernel_wrong_arch"}


# Each bad project failing in its check for its reason: tests/workflows/test_check_project.py.


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_reference_op_passes_compile_level(op, capsys, monkeypatch, tmp_path):
    """Every reference project compiles for sm_90 (kernel + torch binding) with non-empty SASS."""
    _needs_nvcc()
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))
    code, data = _check_json(REF_ROOT / op, "compile", capsys)
    by = {r["name"]: r for r in data["results"]}
    assert code == 0, by
    assert [by[c]["status"] for c in ("build_toml", "compile", "sass")] == ["pass"] * 3, by
    assert by["sass"]["metrics"]["empty_kernels"] == 0 and by["sass"]["metrics"]["sass_kernels"] >= 3


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_reference_op_cuda_kernel_passes_run(op, capsys, monkeypatch, tmp_path):
    """On an H100: the CUDA kernel builds, loads, matches the reference on every test shape and
    dtype, passes the anti-cheat rules (its own kernels ran) and times."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CUDA kernels are only compiled here, not run")
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))
    code, data = _check_json_run(REF_ROOT / op, capsys, op)
    by = {r["name"]: r for r in data["results"]}
    assert code == 0, by
    assert by["run"]["status"] == "pass" and by["speedup"]["status"] == "pass", by


def _check_json_run(project: Path, capsys, op: str) -> tuple[int, dict]:
    import json

    from harness.cli.main import main

    code = main(["check", str(project), "--level", "run", "--device", "cuda", "--op", op, "--json"])
    return code, json.loads(capsys.readouterr().out)
