"""Every CPU cheat project in kernels_reference/cheats/ fails `run` for the reason in its EXPECTED.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cases import Case, KernelSpec
from harness.checks.base import CheckContext, GradeOptions
from harness.checks.run import check_run

CHEATS = Path(__file__).resolve().parent.parent / "kernels_reference" / "cheats"
CPU_CHEATS = sorted(p.name for p in CHEATS.iterdir()
                    if (p / "EXPECTED.txt").is_file() and 'backend = "cpu"' in (p / "build.toml").read_text())
#: Issue 13 item 4: the categories of REFERENCE.md §7 that are not CUDA-specific.
REQUIRED = {"calls_torch_op", "computes_in_pytorch", "returns_input", "returns_constant", "caches_results",
            "reads_reference_output", "monkeypatches_checker_or_timer", "partial_work", "mutates_inputs"}


def test_every_cpu_category_has_a_project() -> None:
    assert REQUIRED <= set(CPU_CHEATS)


@pytest.mark.slow
@pytest.mark.parametrize("name", CPU_CHEATS)
def test_cheat_fails_for_its_reason(name: str, tmp_path: Path) -> None:
    expected = (CHEATS / name / "EXPECTED.txt").read_text().strip()
    case = Case(input="fixture", kernel=KernelSpec(
        op="rmsnorm", api="rms_norm(input, weight, eps)", shapes=[[7, 1000], [3, 4095], [2, 3, 64]],
        dtypes=["float32", "bfloat16"], checks=["run"]))
    ctx = CheckContext(case=case, text="", project_dir=CHEATS / name, level="run", device="cpu",
                       artifacts=tmp_path / "art", options=GradeOptions(timed_iters=20))
    result = check_run(ctx)
    assert result.status == "fail", result.reason
    assert result.device == "cpu"
    # The first (most specific) error is the check's one-line reason, and it names the cheat.
    assert expected in result.reason, (expected, result.reason, [f.reason for f in result.findings])
