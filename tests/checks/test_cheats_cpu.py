"""Every CPU cheat project in kernels_reference/cheats/ fails `run` for the reason in its EXPECTED.txt."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.inputs.cases import Case, KernelSpec
from harness.checks.base import CheckContext, GradeOptions
from harness.checks.run import check_run
from harness.checks.speedup import check_speedup
from sandbox.programs.child_common import POISON_BITS
from harness.execute.judge import CallJudgement, judge_outputs, summarize
from tests.expected import read_expected

CHEATS = Path(__file__).resolve().parents[2] / "kernels_reference" / "cheats"
CPU_CHEATS = sorted(p.name for p in CHEATS.iterdir()
                    if (p / "EXPECTED.txt").is_file() and 'backend = "cpu"' in (p / "build.toml").read_text())
#: Issue 13 item 4: the categories of REFERENCE.md §7 that are not CUDA-specific.
REQUIRED = {"calls_torch_op", "computes_in_pytorch", "returns_input", "returns_constant", "caches_results",
            "reads_reference_output", "monkeypatches_checker_or_timer", "partial_work", "mutates_inputs"}
#: Issue 24: one project per route out of the candidate's process (docs/validation.md, "Threat model").
TRUST_ROUTES = {"forges_records", "rewrites_outputs", "rebinds_clock", "behaves_when_traced",
                "prefetches_later_inputs", "reads_seeds", "hides_torch_in_op", "defers_work", "leaves_processes",
                "torch_when_unwatched"}


def test_every_cpu_category_has_a_project() -> None:
    assert REQUIRED <= set(CPU_CHEATS)
    assert TRUST_ROUTES <= set(CPU_CHEATS)


@pytest.mark.slow
@pytest.mark.parametrize("name", CPU_CHEATS)
def test_cheat_fails_for_its_reason(name: str, tmp_path: Path) -> None:
    spec = read_expected(CHEATS / name)
    expected = spec.reason
    case = Case(input="fixture", kernel=KernelSpec(
        op="rmsnorm", api="rms_norm(input, weight, eps)", shapes=[[7, 1000], [3, 4095], [2, 3, 64]],
        dtypes=["float32", "bfloat16"], checks=["run"]))
    ctx = CheckContext(case=case, text="", project_dir=CHEATS / name, level="run", device="cpu",
                       artifacts=tmp_path / "art", options=GradeOptions(timed_iters=20))
    result = check_run(ctx)
    if spec.check == "speedup":  # right on every call: only the timing can show it
        assert result.status == "pass", (result.reason, [f.reason for f in result.findings])
        result = check_speedup(ctx)
    assert result.status == "fail", result.reason
    assert result.device == "cpu"
    # The first (most specific) error is the check's one-line reason, and it names the cheat.
    assert expected in result.reason, (expected, result.reason, [f.reason for f in result.findings])
    # ... and no other category's reason: a reader can tell which rule fired.
    for other in CPU_CHEATS:
        if other != name:
            assert read_expected(CHEATS / other).reason not in result.reason, (other, result.reason)


def test_each_cpu_category_has_its_own_reason() -> None:
    """A reader must be able to tell which rule fired: no category's reason text is
    shared with, or contained in, another's."""
    expected = {name: read_expected(CHEATS / name).reason for name in CPU_CHEATS}
    for a, text_a in expected.items():
        for b, text_b in expected.items():
            assert a == b or text_a not in text_b, (a, text_a, b, text_b)


def _poisoned(shape: tuple[int, ...], rows: slice) -> torch.Tensor:
    """float32 output whose `rows` still hold the runner's poison pattern (never written)."""
    out = torch.randn(shape)
    out.view(torch.int32)[rows] = POISON_BITS["float32"][1]
    return out


def test_nothing_written_and_partly_written_are_different_rules() -> None:
    """reads_reference_output (the kernel writes nothing) and partial_work (it writes some
    rows) used to give the same reason; each now names what it saw."""
    ref = torch.randn(6, 32)
    reasons = {}
    for label, out in (("none", _poisoned((6, 32), slice(None))), ("half", _poisoned((6, 32), slice(3, None)))):
        j = CallJudgement()
        judge_outputs([out], [ref], ref_inputs=[], earlier=[], atol=1e-4, rtol=1e-4, label="call 0", judgement=j)
        reasons[label] = summarize(j.problems)[0]
    assert reasons["none"][0] == "unwritten" and reasons["half"][0] == "partial"
    assert read_expected(CHEATS / "reads_reference_output").reason in reasons["none"][1]
    assert read_expected(CHEATS / "partial_work").reason in reasons["half"][1]
    assert "96 of 192" in reasons["half"][1] and "192" in reasons["none"][1]
