"""SASS inspection: parsing cuobjdump output, empty-body and wrong-arch detection,
case markers, on real sm_90 / sm_90a builds of the fixture kernels."""

from __future__ import annotations

import json

import pytest

from harness.inputs.cases import Case
from harness.checks.compile import check_compile
from harness.checks.sass import check_sass
from harness.build import toolchain
from harness.build.disassemble import parse_sass
from tests.cuda_helpers import context, kernel_project, needs_nvcc

SAMPLE = """
Fatbin elf code:
================
arch = sm_90
code version = [1,8]
host = linux
compile_size = 64bit

	code for sm_90
	.target	sm_90

		Function : _Z5emptyPf
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;              /* 0x00000a00ff017b82 */
                                                                       /* 0x000fe20000000800 */
        /*0010*/                   EXIT ;                              /* 0x000000000000794d */
                                                                       /* 0x000fea0003800000 */
        /*0020*/                   BRA 0x20;                           /* 0xfffffffc00fc7947 */
                                                                       /* 0x000fc0000383ffff */
        /*0030*/                   NOP;                                /* 0x0000000000007918 */
                                                                       /* 0x000fc00000000000 */
		..........


		Function : _Z4realPf
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;              /* 0x00000a00ff017b82 */
        /*0010*/                   S2R R0, SR_TID.X ;                  /* 0x0000000000007919 */
        /*0020*/                   ISETP.GE.AND P0, PT, R0, 0x100, PT ; /* 0x0000000000007919 */
        /*0030*/               @P0 EXIT ;                              /* 0x000000000000794d */
        /*0040*/                   LDG.E.128 R4, desc[UR4][R2.64] ;    /* 0x0000000402047981 */
        /*0050*/                   STG.E desc[UR4][R2.64], R4 ;        /* 0x0000000402007986 */
        /*0060*/                   EXIT ;                              /* 0x000000000000794d */
        /*0070*/                   BRA 0x70;                           /* 0xfffffffc00fc7947 */
"""


def test_parse_sass_sample():
    sass = parse_sass(SAMPLE)
    assert sass.arches == ["sm_90"]
    empty, real = sass.kernels
    assert empty.name == "_Z5emptyPf" and empty.empty and "NOP" not in empty.opcodes
    assert not real.empty
    assert real.opcodes[:3] == ["LDC", "S2R", "ISETP.GE.AND"]
    assert real.opcodes.count("EXIT") == 2  # the predicate is stripped, the opcode kept
    assert real.histogram["LDG"] == 1 and real.histogram["EXIT"] == 2
    assert real.has("LDG") == 1 and real.has("LDG.E.128") == 1 and real.has("HGMMA") == 0


def _kernel_case(**sass) -> Case:
    return Case.model_validate({"input": "write a kernel", "kernel": {
        "op": "fixture", "api": "f(x)", "checks": ["build_toml", "compile", "sass"], "sass": sass}})


def _compile_then_sass(tmp_path, sources, caps=("9.0",), case=None):
    project = kernel_project(tmp_path / "p", list(sources), caps=list(caps))
    ctx = context(project, tmp_path / "art", case=case)
    compiled = check_compile(ctx)
    assert compiled.status == "pass", compiled.reason
    return ctx, check_sass(ctx)


needs_cuobjdump = pytest.mark.skipif(toolchain.find_cuobjdump() is None,
                                     reason="cuobjdump not found (pip install nvidia-cuda-cuobjdump)")


@needs_nvcc
@needs_cuobjdump
def test_real_kernels_pass_with_histogram(tmp_path):
    ctx, result = _compile_then_sass(tmp_path, ["add.cu"], caps=("9.0", "9.0a"))
    assert result.status == "pass", result.reason
    assert result.metrics["sass_kernels"] == 4 and result.metrics["empty_kernels"] == 0
    notes = {f.key: f.reason for f in result.findings}
    assert any(k.startswith("scale_kernel") and k.endswith("[sm_90]") and "LDG" in v for k, v in notes.items())
    hist = json.loads((ctx.artifacts / "sass" / "histogram.json").read_text())
    scale = next(v for k, v in hist["kernels"].items() if k.startswith("scale_kernel") and k.endswith("[sm_90]"))
    assert scale["histogram"]["FMUL"] == 1 and scale["histogram"]["STG"] == 1
    assert (ctx.artifacts / "sass" / "k_add.cu.sass").read_text().count("code for sm_90a") == 1


@needs_nvcc
@needs_cuobjdump
def test_empty_kernel_under_arch_guard_fails(tmp_path):
    """`#if __CUDA_ARCH__ >= 1000` built for sm_90: the body compiles to nothing."""
    _, result = _compile_then_sass(tmp_path, ["empty_arch.cu"])
    assert result.status == "fail"
    assert "empty kernel body on sm_90" in result.reason and "blackwell_only" in result.reason
    assert result.metrics["empty_kernels"] == 1


@needs_nvcc
@needs_cuobjdump
def test_required_and_forbidden_markers(tmp_path):
    case = _kernel_case(require=["LDGSTS"], forbid=["HGMMA"])
    _, ok = _compile_then_sass(tmp_path / "a", ["cp_async.cu"], case=case)
    assert ok.status == "pass", ok.reason
    assert ok.metrics["marker.LDGSTS"] >= 1 and ok.metrics["marker.HGMMA"] == 0

    missing = _kernel_case(require=["HGMMA"])
    _, res = _compile_then_sass(tmp_path / "b", ["cp_async.cu"], case=missing)
    assert res.status == "fail" and res.reason.startswith("sass.require.HGMMA: required instruction HGMMA")

    forbidden = _kernel_case(forbid=["LDGSTS"])
    _, res = _compile_then_sass(tmp_path / "c", ["cp_async.cu"], case=forbidden)
    assert res.status == "fail" and "forbidden instruction LDGSTS appears in staged_copy" in res.reason


@needs_nvcc
@needs_cuobjdump
def test_wrong_architecture_binary_fails(tmp_path):
    """An object without SASS for the requested H100 target (here: asked for sm_90a,
    the object holds sm_90 only) is a wrong-architecture binary."""
    ctx, _ = _compile_then_sass(tmp_path, ["add.cu"], caps=("9.0",))
    ctx.state["cuda_objects"] = [dict(o, arches=["sm_90a"]) for o in ctx.state["cuda_objects"]]
    result = check_sass(ctx)
    assert result.status == "fail"
    assert "no SASS for sm_90a (binary has sm_90): built for the wrong architecture" in result.reason


@needs_nvcc
@needs_cuobjdump
def test_extra_non_h100_arch_is_a_warning(tmp_path):
    project = kernel_project(tmp_path / "p", ["add.cu"], caps=["9.0"],
                             flags=["-gencode", "arch=compute_80,code=sm_80"])
    ctx = context(project, tmp_path / "art")
    assert check_compile(ctx).status == "pass"
    result = check_sass(ctx)
    assert result.status == "pass"
    assert any(f.severity == "warning" and "sm_80, not an H100 target" in f.reason for f in result.findings)


def test_no_objects_is_a_skip(tmp_path):
    ctx = context(tmp_path, tmp_path / "art")
    result = check_sass(ctx)
    assert result.status == "skip" and "no CUDA objects" in result.reason
