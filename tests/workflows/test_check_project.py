"""`kernelgrade check PROJECT_DIR`: levels, output formats and exit codes, on the
reference projects (must pass) and the known-bad ones (must fail for their reason).

The one torch-binding compile these tests need (kernels_reference/rmsnorm) goes
through the shared compile cache, so only the first run on a machine pays for it.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli.main import main
import harness.scoring.grade
from harness.checks.base import CheckContext
from harness.scoring.grade import run_checks
from harness.workflows.check_project import exit_code
from harness.common.paths import repo_root
from harness.common.results import CheckResult
from harness.build.toolchain import find_nvcc, torch_info
from tests.cuda_helpers import needs_nvcc
from tests.expected import read_expected

REFS = repo_root() / "kernels_reference"
RMSNORM = REFS / "rmsnorm"
BAD = sorted(p for p in (REFS / "bad").glob("*") if (p / "EXPECTED.txt").is_file()) if (REFS / "bad").is_dir() else []


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))


def _json(capsys, argv: list[str]) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


@needs_nvcc
def test_reference_project_passes_compile_level(capsys):
    code, data = _json(capsys, ["check", str(RMSNORM), "--level", "compile", "--json"])
    by = {r["name"]: r for r in data["results"]}
    assert code == 0, by
    assert data["level"] == "compile" and data["exit_code"] == 0
    assert by["build_toml"]["status"] == "pass"
    assert by["compile"]["status"] == "pass" and "sm_90" in by["compile"]["metrics"]["arches"]
    assert by["compile"]["metrics"]["kernels"] >= 1
    assert by["sass"]["status"] == "pass" and by["sass"]["metrics"]["empty_kernels"] == 0
    assert by["run"] == {**by["run"], "status": "skip", "reason": "level compile"}
    assert "run: level compile" in data["skipped"]


@needs_nvcc
def test_table_output_lists_skips(capsys):
    code = main(["check", str(RMSNORM), "--level", "compile"])
    out = capsys.readouterr().out
    assert code == 0
    assert "compile" in out and "pass" in out
    assert "skipped: run (level compile); speedup (level compile)" in " ".join(out.split())


@needs_nvcc
def test_auto_level_is_compile_without_a_gpu(capsys, monkeypatch):
    import harness.checks.levels

    monkeypatch.setattr(harness.checks.levels, "cuda_visible", lambda: False)
    code, data = _json(capsys, ["check", str(RMSNORM), "--json"])
    assert data["level"] == "compile" and data["level_requested"] == "auto" and code == 0


@pytest.mark.parametrize("project", BAD, ids=[p.name for p in BAD])
def test_bad_projects_fail_for_their_reason(project, capsys):
    spec = read_expected(project)
    check, expected = spec.check, spec.reason
    if check in ("compile", "sass") and find_nvcc() is None:
        pytest.skip("nvcc not found")
    if "cuda-torch" in spec.needs and not torch_info().cuda:
        pytest.skip("only loading it shows the fault: tests/build/test_load_probe.py runs it with a CUDA build of torch")
    code, data = _json(capsys, ["check", str(project), "--level", "compile", "--json"])
    failed = [r for r in data["results"] if r["status"] == "fail"]
    assert code == 1 and failed, data["results"]
    if check is not None:
        assert failed[0]["name"] == check, failed  # fails first in the check EXPECTED.txt names
        failed = failed[:1]
    said = [r["reason"] for r in failed] + [f["reason"] for r in failed for f in r["findings"]]
    assert any(expected in s for s in said), (expected, said)


@pytest.mark.parametrize("name, check", [("compile_error", "compile"), ("empty_kernel_wrong_arch", "sass")])
def test_named_bad_projects_fail_in_the_right_check(name, check, capsys):
    """The two bad projects this check owns: build.toml is fine, compile / sass say why."""
    project = REFS / "bad" / name
    if not (project / "EXPECTED.txt").is_file():
        pytest.skip(f"kernels_reference/bad/{name} not present")
    if find_nvcc() is None:
        pytest.skip("nvcc not found")
    code, data = _json(capsys, ["check", str(project), "--level", "compile", "--json"])
    by = {r["name"]: r for r in data["results"]}
    assert code == 1
    assert by["build_toml"]["status"] == "pass"
    assert by[check]["status"] == "fail"
    assert read_expected(project).reason in by[check]["reason"]
    if check == "compile":
        assert by["compile"]["reason"].startswith("relu_cuda/relu.cu:9: ")  # file:line of the error
        assert by["sass"]["reason"] == "blocked by compile"
        assert Path(by["compile"]["log_path"]).is_file()


def test_text_level_skips_are_listed_and_strict_fails(capsys):
    code, data = _json(capsys, ["check", str(RMSNORM), "--level", "text", "--json"])
    by = {r["name"]: r for r in data["results"]}
    assert code == 0 and by["build_toml"]["status"] == "pass"
    assert [by[n]["reason"] for n in ("compile", "sass", "run", "speedup")] == ["level text"] * 4
    assert main(["check", str(RMSNORM), "--level", "text", "--strict", "--json"]) == 1


def test_junit_one_testcase_per_check_with_cpu_label(tmp_path, capsys):
    out = tmp_path / "r" / "junit.xml"
    assert main(["check", str(RMSNORM), "--level", "text", "--device", "cpu", "--junit", str(out)]) == 0
    capsys.readouterr()
    suite = ET.parse(out).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"{n} [CPU]" for n in ("build_toml", "scan", "compile", "sass", "run",
                                                                     "speedup")]
    assert suite.get("skipped") == "4" and suite.get("failures") == "0"
    assert cases[0].find("skipped") is None and cases[1].find("skipped") is None  # build_toml, scan: text level
    assert all(c.find("skipped").get("message") == "level text" for c in cases[2:])
    assert "[CPU]" in suite.get("name")


def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch):
    import harness.checks.levels

    assert main(["check", str(tmp_path / "missing")]) == 2
    assert main(["check", str(tmp_path)]) == 2  # no build.toml
    assert main(["check", str(RMSNORM), "--level", "fast"]) == 2
    assert main(["check", str(RMSNORM), "--op", "no_such_op", "--level", "text"]) == 2
    assert main(["check", str(RMSNORM), "--reference", str(tmp_path / "nope.py"), "--level", "text"]) == 2
    monkeypatch.setattr(harness.checks.levels, "cuda_visible", lambda: False)
    assert main(["check", str(RMSNORM), "--level", "run", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--level run needs a CUDA device" in " ".join(err.split())


def test_exit_code_rules():
    ok = CheckResult(name="compile", status="pass")
    fail = CheckResult(name="sass", status="fail", reason="x")
    err = CheckResult.error("run", "harness fault")
    skip = CheckResult.skip("speedup", "level compile")
    assert exit_code([ok, skip], strict=False) == 0
    assert exit_code([ok, skip], strict=True) == 1
    assert exit_code([ok, fail, err], strict=False) == 1
    assert exit_code([ok, err], strict=False) == 3


def _run_with(monkeypatch, tmp_path, outcomes: dict[str, CheckResult]) -> dict[str, CheckResult]:
    """run_checks over the project checks, each check answering what `outcomes` says (pass if
    not named); any check that runs although blocked shows as a pass it should not have."""
    monkeypatch.setattr(harness.scoring.grade, "get_check",
                        lambda name: lambda ctx: outcomes.get(name, CheckResult(name=name, status="pass")))
    ctx = CheckContext(case=None, text="", project_dir=tmp_path, level="run", device="cuda", artifacts=tmp_path)
    return {r.name: r for r in run_checks(ctx, ["build_toml", "scan", "compile", "sass", "run", "speedup"])}


def test_a_check_blocked_by_a_skip_says_why_and_one_blocked_by_a_failure_does_not(monkeypatch, tmp_path):
    no_cuda = "no CUDA kernel to compile: a [torch-noarch] project"
    by = _run_with(monkeypatch, tmp_path, {"compile": CheckResult.skip("compile", no_cuda)})
    assert by["sass"].status == "skip" and by["sass"].reason == f"compile skipped: {no_cuda}"
    assert by["run"].reason == f"compile skipped: {no_cuda}"
    assert by["speedup"].reason == f"run skipped: compile skipped: {no_cuda}"
    results = list(by.values())
    assert exit_code(results, strict=False) == 0 and exit_code(results, strict=True) == 1

    failed = _run_with(monkeypatch, tmp_path, {"compile": CheckResult(name="compile", status="fail", reason="x.cu:3: error")})
    assert failed["sass"].reason == "blocked by compile" and failed["run"].reason == "blocked by compile"
    assert failed["speedup"].reason == "run skipped: blocked by compile"


@needs_nvcc
def test_cpu_device_compile_level_builds_cpu_kernels_too(capsys):
    code, data = _json(capsys, ["check", str(RMSNORM), "--level", "compile", "--device", "cpu", "--json"])
    compiled = next(r for r in data["results"] if r["name"] == "compile")
    assert code == 0, compiled
    assert compiled["status"] == "pass" and compiled["device"] == "cpu"
    assert "CPU extension built" in compiled["reason"] and "CUDA units" in compiled["reason"]
    assert "cpu_cache_hit" in compiled["metrics"]


def _as_answer(project: Path) -> str:
    """A model-style answer holding every file of a project (a fixture, built from a
    known-bad project, standing in for a model answer)."""
    blocks = []
    for path in sorted(p for p in project.rglob("*") if p.is_file() and p.name != "EXPECTED.txt"):
        rel = path.relative_to(project).as_posix()
        blocks.append(f"```text path={rel}\n{path.read_text()}```\n")
    return "Here is the project.\n\n" + "\n".join(blocks)


def test_eval_grading_runs_compile_and_sass_on_an_answer(tmp_path):
    """grade_answer (what eval and rescore call) reaches the same compile and sass checks."""
    from harness.inputs.cases import Case
    from harness.scoring.grade import grade_answer

    project = REFS / "bad" / "empty_kernel_wrong_arch"
    if not (project / "EXPECTED.txt").is_file() or find_nvcc() is None:
        pytest.skip("needs kernels_reference/bad/empty_kernel_wrong_arch and nvcc")
    case = Case.model_validate({"input": "Write a ReLU kernel for H100.", "kernel": {
        "op": "relu", "api": "relu(x: Tensor) -> Tensor", "checks": ["build_toml", "compile", "sass"]}})
    grade = grade_answer(case, _as_answer(project), level="compile", device="cuda", artifacts=tmp_path)
    by = {r.name: r for r in grade.results}
    assert by["build_toml"].status == "pass", by["build_toml"].reason
    assert by["compile"].status == "pass", by["compile"].reason
    assert by["sass"].status == "fail" and "empty kernel body on sm_90" in by["sass"].reason
    assert grade.score.verdict == "fail"


@needs_nvcc
def test_run_on_cpu_without_a_cpu_kernel_is_one_line_and_exit_2(capsys):
    """Issue 19 item 9: a CUDA-only project asked to run on the CPU is the user's error (exit 2,
    one line), not an internal error (3) in the table."""
    project = repo_root() / "tests" / "fixtures" / "projects" / "compat" / "cxx_flags_canary"
    assert main(["check", str(project), "--level", "run", "--device", "cpu", "--op", "rmsnorm"]) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "no CPU kernel in build.toml" in err and "internal error" not in err + captured.out


def test_run_level_without_a_reference_is_an_error_not_a_pass(tmp_path, capsys):
    """Issue 19 item 9: `--level run` with no --op, --reference or reference.py cannot run anything;
    exit 2 with one line, where a skip would have let a CI job pass (auto keeps the skip)."""
    project = tmp_path / "noref"
    shutil.copytree(repo_root() / "tests" / "fixtures" / "projects" / "compat" / "cxx_flags_canary", project)
    assert not (project / "reference.py").exists()
    assert main(["check", str(project), "--level", "run", "--device", "cpu"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--level run: no reference to run against" in err
