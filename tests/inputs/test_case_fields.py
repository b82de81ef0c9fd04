"""Case fields from upskill and from importers: honoured or refused, never dropped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.common.errors import UserError
from harness.inputs.cases import load_cases, parse_cases
from harness.inputs.reference import resolve_reference_path

REPO = Path(__file__).resolve().parents[2]


def test_an_upskill_validator_is_refused_with_its_name() -> None:
    with pytest.raises(UserError, match=r"case 0: upskill validator 'json_schema' is not supported"):
        parse_cases({"cases": [{"input": "x", "validator": "json_schema", "validator_config": {}}]})
    with pytest.raises(UserError, match="validator_config only"):
        parse_cases({"cases": [{"input": "x", "validator_config": {"a": 1}}]})


def test_the_cli_refuses_a_validator_case_with_exit_2(tmp_path: Path) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"input": "x", "expected": {"contains": "y"}, "validator": "exact"}]}))
    out = subprocess.run([sys.executable, "-m", "harness.cli.main", "eval", str(REPO / "skills" / "h100-kernel-builder"),
                          "--cases", str(cases), "--model", "fake", "--base-url", "http://127.0.0.1:9/v1"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "upskill validator 'exact' is not supported" in out.stderr and "Traceback" not in out.stderr


def test_a_case_reference_is_resolved_against_the_case_file_and_wins(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    ref = tmp_path / "refs" / "reference.py"
    ref.write_text("# a reference\n")
    (tmp_path / "cases.json").write_text(json.dumps({"cases": [{"input": "x", "kernel": {
        "op": "mine", "api": "mine(x)", "reference": "refs/reference.py"}}]}))
    (case,) = load_cases(tmp_path / "cases.json")
    assert case.kernel.reference == str(ref.resolve())
    found = resolve_reference_path(explicit=None, op="rmsnorm", project_dir=None, case_reference=case.kernel.reference)
    assert found == ref.resolve()
    with pytest.raises(UserError, match="the case's reference .*: no such file"):
        resolve_reference_path(explicit=None, op=None, project_dir=None, case_reference=str(tmp_path / "gone.py"))
