"""build_toml check: the kernels 0.17.2 parser plus our own rules, on small fixture projects.

Most tests copy tests/fixtures/build_toml/good and change one thing, so each failure
comes from exactly that change. These run the real kernels parser (in a child process).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.inputs.cases import Case
from harness.checks.base import CheckContext
from harness.checks.build_toml import (
    BUILDER_DEFAULT_CAPABILITIES,
    analyse,
    check_build_toml,
    validate_project,
)
from harness.project.capabilities import covers, parse_capability
from harness.project.kernels_parser import PINNED_VERSION, installed_version, parse_build
from harness.common.results import Finding

FIXTURES = Path(__file__).parents[1] / "fixtures" / "build_toml"


@pytest.fixture
def good(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(FIXTURES / "good", dest)
    return dest


def edit(root: Path, old: str, new: str, file: str = "build.toml") -> None:
    path = root / file
    text = path.read_text()
    assert old in text, f"fixture edit: {old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def by_severity(findings: list[Finding], severity: str) -> list[Finding]:
    return [f for f in findings if f.severity == severity]


def ctx_for(project: Path | None, tmp_path: Path, *, case: Case | None = None,
            extraction: list[Finding] | None = None) -> CheckContext:
    ctx = CheckContext(case=case, text="", project_dir=project, level="text", device="cuda",
                       artifacts=tmp_path / "art")
    ctx.state["extraction"] = extraction or []
    return ctx


def kernel_case(capabilities: list[str]) -> Case:
    return Case.model_validate({"input": "write relu", "kernel": {
        "op": "relu", "api": "relu(x: Tensor) -> Tensor", "capabilities": capabilities}})


# --------------------------------------------------------------------------- the parser wrapper

def test_pinned_kernels_version_is_installed():
    assert installed_version() == PINNED_VERSION


def test_parser_accepts_good_project():
    parsed = parse_build(FIXTURES / "good")
    assert parsed.ok and parsed.format == "edition5" and parsed.edition == 5
    assert parsed.backends == ["cuda", "cpu"]
    assert parsed.warnings == []


def test_parser_reports_legacy_v4_warning_from_fd2(good: Path):
    edit(good, "edition = 5\n", "")
    parsed = parse_build(good)
    assert parsed.ok and parsed.format == "legacy-v4" and parsed.edition is None
    assert any("legacy v4" in w for w in parsed.warnings)


def test_parser_refuses_edition6_and_v3():
    e6 = parse_build(FIXTURES / "edition6")
    assert not e6.ok and e6.format == "newer" and e6.edition == 6
    assert "unsupported build edition 6" in (e6.error or "")
    v3 = parse_build(FIXTURES / "legacy_v3")
    assert not v3.ok and v3.format == "legacy-v3"
    assert str(FIXTURES) not in (v3.error or ""), "the directory prefix is stripped"


def test_parser_missing_project_is_a_parse_error_not_a_crash(tmp_path: Path):
    parsed = parse_build(tmp_path / "nowhere")
    assert not parsed.ok and parsed.internal_error is None and "No such file" in (parsed.error or "")


# --------------------------------------------------------------------------- editions

def test_good_project_passes_with_metrics(good: Path, tmp_path: Path):
    result = check_build_toml(ctx_for(good, tmp_path))
    assert result.status == "pass", result.findings
    assert by_severity(result.findings, "warning") == []
    assert result.metrics["edition"] == 5
    assert result.metrics["kernels_cuda"] == 1 and result.metrics["kernels_cpu"] == 1
    assert result.metrics["kernels_total"] == 2


def test_legacy_v4_is_a_warning(good: Path, tmp_path: Path):
    edit(good, "edition = 5\n", "")
    result = check_build_toml(ctx_for(good, tmp_path))
    assert result.status == "pass"
    warning = [f for f in result.findings if f.key == "general.edition"]
    assert warning and warning[0].severity == "warning" and "legacy v4" in warning[0].reason
    assert result.metrics["format"] == "legacy-v4"


def test_legacy_v3_fails_as_no_longer_accepted(tmp_path: Path):
    result = check_build_toml(ctx_for(FIXTURES / "legacy_v3", tmp_path))
    assert result.status == "fail"
    assert result.findings[0].key == "general.edition"
    assert "no longer accepted by the builder" in result.reason


def test_edition6_is_skipped_plainly_and_flagged_for_later_checks(tmp_path: Path):
    ctx = ctx_for(FIXTURES / "edition6", tmp_path)
    result = check_build_toml(ctx)
    assert result.status == "skip"
    assert result.reason.startswith(f"edition 6 is newer than kernels {PINNED_VERSION}")
    assert ctx.state["build_toml_newer_edition"] is True
    notes = validate_project(FIXTURES / "edition6")
    assert [f.severity for f in notes] == ["note"] and "edition 6" in notes[0].reason


# --------------------------------------------------------------------------- the parser's own errors

@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ('src = ["relu_cpu/relu.cpp"]', 'src = ["relu_cpu/relu.cpp"]\nfoo = 1', "kernel.relu_cpu.foo", "Unknown field foo"),
    ('license = "Apache-2.0"\n', "", "general.license", "Missing field license"),
    ('name = "tiny-relu"', 'name = "Tiny_Relu"', "general.name", "Invalid kernel name"),
    ('backend = "cpu"\n', "", "kernel.relu_cpu.backend", "Missing field backend"),
    ("version = 1", 'version = "1.0"', "build.toml", "Expected usize"),
    ("[general]", "[general", "build.toml", "TOML parse error"),
])
def test_parser_errors_become_located_findings(good: Path, old: str, new: str, key: str, words: str):
    edit(good, old, new)
    found = errors(validate_project(good))
    assert found, "expected an error"
    assert found[0].key == key
    assert words in found[0].reason and "kernels 0.17.2 parser" in found[0].reason
    assert "\n" not in found[0].reason


def test_missing_torch_section_fails(good: Path):
    edit(good, '[torch]\nsrc = ["torch-ext/torch_binding.cpp", "torch-ext/torch_binding.h"]\n', "")
    found = errors(validate_project(good))
    assert any(f.key == "torch" for f in found)


def test_no_build_toml(tmp_path: Path):
    found = validate_project(tmp_path)
    assert [(f.severity, f.key) for f in found] == [("error", "build.toml")]


# --------------------------------------------------------------------------- capabilities

@pytest.mark.parametrize(("written", "fix"), [
    ("sm_90", "9.0"), ("90", "9.0"), ("compute_90", "9.0"), ("sm_90a", "9.0a"), ("sm100", "10.0"),
])
def test_capability_spellings_the_builder_ignores(good: Path, written: str, fix: str):
    edit(good, 'cuda-capabilities = ["9.0"]', f'cuda-capabilities = ["{written}", "9.0"]')
    found = errors(validate_project(good))
    assert len(found) == 1
    assert found[0].key == "kernel.relu.cuda-capabilities"
    assert repr(written) in found[0].reason and f'write "{fix}"' in found[0].reason


def test_parser_itself_accepts_sm_90_so_the_check_is_ours(good: Path):
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["sm_90"]')
    assert parse_build(good).ok
    assert errors(validate_project(good))


def test_impossible_capability_fails_like_upstream_invalid_capability(good: Path):
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["99999.0"]')
    found = errors(validate_project(good))
    assert any("no NVIDIA GPU has compute capability 99999.0" in f.reason for f in found)


def test_capability_cuda13_cannot_target_is_dropped_with_a_note(good: Path):
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["5.0", "7.5", "9.0"]')
    findings = validate_project(good)
    assert errors(findings) == []
    assert any(f.severity == "note" and "'5.0' dropped" in f.reason for f in findings)


def test_only_dropped_capabilities_is_an_empty_set(good: Path):
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["5.0"]')
    found = errors(validate_project(good))
    assert any("empty set of capabilities" in f.reason for f in found)


def test_empty_capability_list_fails(good: Path):
    edit(good, 'cuda-capabilities = ["9.0"]', "cuda-capabilities = []")
    assert any("empty set" in f.reason for f in errors(validate_project(good)))


def test_no_h100_target_is_a_note_for_the_project_and_fails_an_h100_case(good: Path, tmp_path: Path):
    """kernel-builder builds an sm_80-only kernel (flash-attn3's sm80 variant beside its sm90
    one): valid on its own; a case that asks for 9.0 fails it."""
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["8.0", "8.6"]')
    findings = validate_project(good)
    assert errors(findings) == []
    assert any(f.severity == "note" and "no H100 target" in f.reason for f in findings)
    result = check_build_toml(ctx_for(good, tmp_path, case=kernel_case(["9.0"])))
    assert result.status == "fail" and "asks for '9.0'" in result.reason


def test_capability_no_gpu_has_is_dropped_beside_valid_ones(good: Path):
    """kernel-builder intersects the list with the toolkit's archs (megablocks lists "11.8")."""
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["9.0", "11.8"]')
    findings = validate_project(good)
    assert errors(findings) == []
    assert any(f.severity == "note" and "11.8" in f.reason and "dropped" in f.reason for f in findings)


@pytest.mark.parametrize("caps", ['["9.0a"]', '["9.0+PTX"]', '["8.0", "9.0+PTX"]', '["9.0", "10.0a", "12.0f"]'])
def test_h100_target_forms_accepted(good: Path, caps: str):
    edit(good, 'cuda-capabilities = ["9.0"]', f"cuda-capabilities = {caps}")
    assert errors(validate_project(good)) == []


@pytest.mark.parametrize(("caps", "words"), [('["8.0a", "9.0"]', "'a'"), ('["9.0f"]', "'f'")])
def test_suffix_that_does_not_exist(good: Path, caps: str, words: str):
    edit(good, 'cuda-capabilities = ["9.0"]', f"cuda-capabilities = {caps}")
    assert any(words in f.reason for f in errors(validate_project(good)))


def test_missing_capabilities_uses_builder_default_with_a_note(good: Path):
    edit(good, 'cuda-capabilities = ["9.0"]\n', "")
    findings = validate_project(good)
    assert errors(findings) == []
    note = [f for f in findings if f.key == "kernel.relu.cuda-capabilities"]
    assert note and note[0].severity == "note" and "default" in note[0].reason
    assert "9.0" in BUILDER_DEFAULT_CAPABILITIES


def test_case_capabilities_must_be_covered(good: Path, tmp_path: Path):
    result = check_build_toml(ctx_for(good, tmp_path, case=kernel_case(["9.0a"])))
    assert result.status == "fail" and "asks for '9.0a'" in result.reason
    edit(good, 'cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["9.0a"]')
    assert check_build_toml(ctx_for(good, tmp_path, case=kernel_case(["9.0"]))).status == "pass"


def test_case_with_capabilities_needs_a_cuda_kernel(tmp_path: Path):
    project = tmp_path / "noarch"
    shutil.copytree(FIXTURES / "bad_registration", project)
    (project / "torch-ext/bad_reg/__init__.py").write_text("def double_it(x):\n    return x * 2\n")
    assert errors(validate_project(project)) == []
    found = errors(validate_project(project, required_caps=["9.0"]))
    assert [f.key for f in found] == ["kernel"] and "no CUDA kernel" in found[0].reason


def test_covers_rules():
    nine, nine_a, ptx = (parse_capability(s) for s in ("9.0", "9.0a", "9.0+PTX"))
    assert nine and nine_a and ptx
    assert covers([nine_a], nine) and covers([ptx], nine)
    assert not covers([nine, ptx], nine_a)
    assert parse_capability("sm_90") is None


def test_cuda_kernel_backend_not_in_general_backends(good: Path):
    edit(good, 'backends = ["cuda", "cpu"]', 'backends = ["cpu"]')
    found = errors(validate_project(good))
    assert [f.key for f in found] == ["kernel.relu.backend"]


# --------------------------------------------------------------------------- sources

def test_src_entry_missing(good: Path):
    (good / "relu_cpu/relu.cpp").unlink()
    found = errors(validate_project(good))
    assert [(f.key, "'relu_cpu/relu.cpp' is listed but does not exist" in f.reason) for f in found] == [
        ("kernel.relu_cpu.src", True)]


def test_src_glob_flagged(good: Path):
    edit(good, 'src = ["relu_cpu/relu.cpp"]', 'src = ["relu_cpu/*.cpp"]')
    found = errors(validate_project(good))
    assert any(f.key == "kernel.relu_cpu.src" and "glob" in f.reason for f in found)


def test_src_outside_project_flagged(good: Path):
    edit(good, 'src = ["relu_cpu/relu.cpp"]', 'src = ["relu_cpu/relu.cpp", "../outside.cpp"]')
    found = errors(validate_project(good))
    assert any("not a relative path inside the project" in f.reason for f in found)


def test_included_header_not_in_src_is_an_error(good: Path):
    edit(good, 'src = ["relu_cuda/relu.cu", "relu_cuda/common.cuh"]', 'src = ["relu_cuda/relu.cu"]')
    found = errors(validate_project(good))
    assert len(found) == 1 and found[0].key == "kernel.relu.src"
    assert "relu_cuda/common.cuh is #included by relu_cuda/relu.cu" in found[0].reason


def test_transitive_include_through_listed_header(good: Path):
    (good / "relu_cuda/math.cuh").write_text("#pragma once\n")
    (good / "relu_cuda/common.cuh").write_text('#pragma once\n#include "math.cuh"\n')
    found = errors(validate_project(good))
    assert any("relu_cuda/math.cuh is #included by relu_cuda/common.cuh" in f.reason for f in found)


def test_include_via_include_dir_and_parent_relative(good: Path):
    (good / "include").mkdir()
    (good / "include/shared.h").write_text("#pragma once\n")
    edit(good, '#include "common.cuh"', '#include "common.cuh"\n#include <shared.h>', "relu_cuda/relu.cu")
    edit(good, 'src = ["relu_cuda/relu.cu", "relu_cuda/common.cuh"]',
         'src = ["relu_cuda/relu.cu", "relu_cuda/common.cuh"]\ninclude = ["include"]')
    assert any("include/shared.h is #included" in f.reason for f in errors(validate_project(good)))
    # Listed via a parent-relative include, as upstream relu-tvm-ffi does with util.hh.
    edit(good, 'src = ["relu_cuda/relu.cu", "relu_cuda/common.cuh"]',
         'src = ["relu_cuda/relu.cu", "relu_cuda/common.cuh", "include/shared.h"]')
    edit(good, "#include <shared.h>", '#include "../include/shared.h"', "relu_cuda/relu.cu")
    assert errors(validate_project(good)) == []


def test_unlisted_unused_source_is_a_note(good: Path):
    (good / "tools").mkdir()
    (good / "tools/bench.cu").write_text("int main() { return 0; }\n")
    findings = validate_project(good)
    assert errors(findings) == []
    assert any(f.key == "tools/bench.cu" and f.severity == "note" for f in findings)


# --------------------------------------------------------------------------- builder-supplied files

REGISTRATION_OK = """#pragma once
#include <Python.h>
#define TORCH_LIBRARY_EXPAND(NAME, MODULE) TORCH_LIBRARY(NAME, MODULE)
"""


def test_supplied_registration_h_is_a_warning(good: Path, tmp_path: Path):
    (good / "torch-ext/registration.h").write_text(REGISTRATION_OK)
    result = check_build_toml(ctx_for(good, tmp_path))
    assert result.status == "pass"
    warned = {f.key for f in by_severity(result.findings, "warning")}
    assert {"torch-ext/registration.h", "torch.src"} <= warned


def test_registration_h_hard_coding_namespace_fails(good: Path):
    (good / "torch-ext/registration.h").write_text("#pragma once\n#define REG(M) TORCH_LIBRARY(my_ops, M)\n")
    found = errors(validate_project(good))
    assert [f.key for f in found] == ["torch-ext/registration.h"] and "'my_ops'" in found[0].reason


def test_supplied_ops_py(good: Path):
    ops = good / "torch-ext/tiny_relu/_ops.py"
    ops.write_text("import torch\nfrom . import _C\nops = _C\n")
    findings = validate_project(good)
    assert errors(findings) == [] and any(f.key.endswith("_ops.py") and f.severity == "warning" for f in findings)
    ops.write_text("import torch\nops = torch.ops._tiny_relu_cuda_abc1234\n")
    found = errors(validate_project(good))
    assert [f.key for f in found] == ["torch-ext/tiny_relu/_ops.py"] and "hard-codes" in found[0].reason


# --------------------------------------------------------------------------- Python package, names

def test_bad_registration_fails_like_upstream(tmp_path: Path):
    found = errors(validate_project(FIXTURES / "bad_registration"))
    assert [f.key for f in found] == ["torch-ext/bad_reg/__init__.py:4"]
    assert "add_op_namespace_prefix" in found[0].reason


def test_registration_through_prefix_passes(good: Path):
    (good / "torch-ext/tiny_relu/fake.py").write_text(
        "import torch\nfrom ._ops import add_op_namespace_prefix\n\n"
        '@torch.library.register_fake(add_op_namespace_prefix("relu"))\n'
        "def _(out, x):\n    return None\n")
    assert errors(validate_project(good)) == []


def test_python_syntax_error(good: Path):
    (good / "torch-ext/tiny_relu/__init__.py").write_text("def relu(x:\n")
    found = errors(validate_project(good))
    assert [f.key for f in found] == ["torch-ext/tiny_relu/__init__.py:1"]


def test_python_package_named_after_general_name(good: Path):
    shutil.move(good / "torch-ext/tiny_relu", good / "torch-ext/relu")
    found = errors(validate_project(good))
    assert [f.key for f in found] == ["torch-ext/tiny_relu"]


# --------------------------------------------------------------------------- other backends, frameworks

def test_other_backends_are_notes_not_failures(good: Path):
    (good / "relu_metal").mkdir()
    (good / "relu_metal/relu.mm").write_text("// metal\n")
    edit(good, 'backends = ["cuda", "cpu"]', 'backends = ["cuda", "cpu", "metal"]')
    (good / "build.toml").write_text((good / "build.toml").read_text()
                                     + '\n[kernel.relu_metal]\nbackend = "metal"\ndepends = ["torch"]\nsrc = ["relu_metal/relu.mm"]\n')
    result = check_build_toml(ctx_for(good, Path(good.parent)))
    assert result.status == "pass"
    assert any(f.key == "kernel.relu_metal" and "not checked" in f.reason for f in result.findings)
    assert result.metrics["kernels_metal"] == 1


def test_tvm_ffi_project_without_torch_section(tmp_path: Path):
    root = tmp_path / "tvm"
    (root / "relu_cuda").mkdir(parents=True)
    (root / "tvm-ffi-ext/tvm_relu").mkdir(parents=True)
    (root / "build.toml").write_text(
        '[general]\nname = "tvm-relu"\nversion = 1\nedition = 5\nlicense = "MIT"\nbackends = ["cuda"]\n\n'
        '[tvm-ffi]\nsrc = ["tvm-ffi-ext/binding.cpp"]\n\n'
        '[kernel.relu]\nbackend = "cuda"\ndepends = []\ncuda-capabilities = ["9.0"]\nsrc = ["relu_cuda/relu.cu"]\n')
    (root / "relu_cuda/relu.cu").write_text("__global__ void k() {}\n")
    (root / "tvm-ffi-ext/binding.cpp").write_text("// binding\n")
    (root / "tvm-ffi-ext/tvm_relu/__init__.py").write_text("x = 1\n")
    assert errors(validate_project(root)) == []


def test_project_dir_none_reports_extraction(tmp_path: Path):
    result = check_build_toml(ctx_for(None, tmp_path))
    assert result.status == "fail" and result.reason == "(answer): no files found in the answer"
    rejected = Finding(severity="error", key="/etc/passwd", reason="absolute path")
    result = check_build_toml(ctx_for(None, tmp_path, extraction=[rejected]))
    assert result.status == "fail" and result.findings == [rejected]


def test_extraction_errors_fail_even_with_a_sound_project(good: Path, tmp_path: Path):
    rejected = Finding(severity="error", key="../x.cu", reason="'..' component")
    duplicate = Finding(severity="warning", key="a.cu", reason="given twice")
    result = check_build_toml(ctx_for(good, tmp_path, extraction=[rejected, duplicate]))
    assert result.status == "fail" and result.reason == "answer: ../x.cu: not written: '..' component"
    assert any(f.key == "answer: a.cu" and f.severity == "warning" for f in result.findings)
    assert check_build_toml(ctx_for(good, tmp_path, extraction=[duplicate])).status == "pass"


def test_analyse_reports_format_and_counts():
    report = analyse(FIXTURES / "good")
    assert report.format == "edition5" and report.kernel_counts == {"cuda": 1, "cpu": 1}


def test_parser_not_installed_is_a_harness_error_not_a_fail(good: Path, tmp_path: Path, monkeypatch):
    import harness.project.kernels_parser as kp

    monkeypatch.setattr(kp, "_rust_library", lambda: None)
    result = check_build_toml(ctx_for(good, tmp_path))
    assert result.status == "error" and "pip install kernels==0.17.2" in result.reason


def test_parser_timeout_is_a_harness_error(good: Path, tmp_path: Path, monkeypatch):
    import subprocess

    import harness.project.kernels_parser as kp

    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 60)

    monkeypatch.setattr(kp.subprocess, "run", slow)
    parsed = kp.parse_build(good)
    assert parsed.internal_error and "timed out" in parsed.internal_error
    assert check_build_toml(ctx_for(good, tmp_path)).status == "error"


def test_symlinked_build_toml_refused(good: Path, tmp_path: Path):
    real = tmp_path / "elsewhere.toml"
    (good / "build.toml").rename(real)
    (good / "build.toml").symlink_to(real)
    assert [f.reason for f in errors(validate_project(good))] == ["build.toml is a symlink: refused"]
