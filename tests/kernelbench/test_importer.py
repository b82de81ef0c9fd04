"""`cases import-kernelbench` on the fixture checkout: what is imported, what is refused and
why, and that every generated reference keeps the reference contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.checks.scan import _reference_names
from harness.cli.main import main
from harness.common.errors import UserError
from harness.inputs.cases import load_cases
from harness.inputs.reference import load_reference_module
from harness.kernelbench.importer import import_kernelbench, parse_numbers, problem_files, problems_dir
from tests.kernelbench.conftest import CHECKOUT, TEST_MAX_BYTES, reference_of

IMPORTED = {"kb-l1-001-leakyrelu", "kb-l1-002-sum-reduction-over-a-dimension", "kb-l1-003-linear",
            "kb-l1-008-batchnorm", "kb-l2-001-gemm-relu"}
REFUSED = {"4_Dropout": "randomness", "5_Norm_as_number": "non_tensor_output", "6_Running_total": "stateful",
           "7_Too_large": "too_large"}


def test_imports_the_expressible_problems_and_refuses_the_rest_with_reasons(imported) -> None:
    assert {c.id for c in load_cases(imported.cases_path)} == IMPORTED
    assert {r.name: r.reason for r in imported.refused} == REFUSED
    assert imported.counts() == {1: {"imported": 4, "randomness": 1, "non_tensor_output": 1, "stateful": 1,
                                     "too_large": 1}, 2: {"imported": 1}}
    data = json.loads(imported.cases_path.read_text())
    listed = {r["name"]: r["reason"] for r in data["kernelbench"]["not_imported"]}
    assert listed == REFUSED  # never dropped silently: the case file lists them too
    assert all(r["detail"] for r in data["kernelbench"]["not_imported"])


def test_refusal_details_say_what_was_seen(imported) -> None:
    detail = {r.name: r.detail for r in imported.refused}
    assert "different results" in detail["4_Dropout"]
    assert "float" in detail["5_Norm_as_number"]
    assert "buffer total" in detail["6_Running_total"]
    assert "80 GB" in detail["7_Too_large"]


def test_every_reference_keeps_the_contract(imported) -> None:
    for case in load_cases(imported.cases_path):
        path = reference_of(imported, case)
        ref = load_reference_module(path)  # checks API, reference, make_inputs, SHAPES, DTYPES, ...
        assert ref.API == case.kernel.api_name
        assert _reference_names(path)[:1] == [ref.API]  # the scan reads API and TORCH_OPS as literals
        assert ref.TORCH_OPS and all(op.startswith("aten::") for op in ref.TORCH_OPS)
        assert len(ref.SHAPES) == 1 and len(ref.TEST_SHAPES) == 2
        for shape in ref.TEST_SHAPES:
            args = ref.make_inputs(tuple(shape), torch.float32, torch.Generator().manual_seed(7))
            again = ref.make_inputs(tuple(shape), "float32", torch.Generator().manual_seed(7))
            other = ref.make_inputs(tuple(shape), torch.float32, torch.Generator().manual_seed(8))
            assert all(torch.equal(a, b) for a, b in zip(args, again))  # the seed decides the inputs
            assert not all(torch.equal(a, b) for a, b in zip(args, other))
            out = ref.reference(*args)
            assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
            moved = ref.bytes_moved(shape, torch.float32)
            assert 0 < moved <= TEST_MAX_BYTES
            assert sum(a.numel() for a in args) + out.numel() <= 1 << 20  # CI: small shapes
        for shape in [*ref.SHAPES, *ref.TEST_SHAPES]:
            assert ref.bytes_moved(shape, "float32") > 0


def test_parameters_are_inputs_drawn_from_the_modules_own_init(imported) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-003-linear")
    ref = load_reference_module(reference_of(imported, case))
    assert ref.STATE_NAMES == ["fc.weight", "fc.bias"]
    assert case.kernel.api == "linear(x: Tensor, fc_weight: Tensor, fc_bias: Tensor) -> Tensor"
    shape = ref.TEST_SHAPES[0]
    x, w, b = ref.make_inputs(tuple(shape), torch.float32, torch.Generator().manual_seed(1))
    assert w.shape == (shape[2], shape[1]) and b.shape == (shape[2],)
    bound = 1 / shape[1] ** 0.5  # nn.Linear's kaiming-uniform bound
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > bound / 2
    torch.testing.assert_close(ref.reference(x, w, b), torch.nn.functional.linear(x, w, b))
    assert ref.flops(ref.SHAPES[0], "float32") == 2 * 512 * 8192 * 8191


def test_buffers_forward_only_updates_are_left_out(imported) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-008-batchnorm")
    ref = load_reference_module(reference_of(imported, case))
    assert ref.STATE_NAMES == ["bn.weight", "bn.bias"]
    assert ref.DROPPED_STATE == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert "Not part of the op: bn.running_mean" in case.input
    x, w, b = ref.make_inputs(tuple(ref.TEST_SHAPES[0]), torch.float32, torch.Generator().manual_seed(3))
    expected = torch.nn.functional.batch_norm(x, None, None, w, b, training=True)
    torch.testing.assert_close(ref.reference(x, w, b), expected)
    torch.testing.assert_close(ref.reference(x, w, b), expected)  # the running stats it updates do not matter


def test_cpu_shapes_follow_the_scaling_rule(imported) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l1-001-leakyrelu")
    meta = case.model_extra["kernelbench"]
    assert meta["sizes"] == {"batch_size": 4096, "dim": 393216}
    first, second = meta["cpu_sizes"]
    # the largest size is halved first, so both come down; the odd/even pattern is kept
    assert first["dim"] < 393216 and first["batch_size"] < 4096
    assert second == {k: v // 2 for k, v in first.items()}
    assert meta["cpu_reference_ms"] is not None and meta["cpu_reference_ms"] <= 50
    reduction = next(c for c in load_cases(imported.cases_path) if "sum" in c.id).model_extra["kernelbench"]
    assert reduction["cpu_sizes"][0]["dim2"] % 2 == 1  # 4095 stays odd


def test_case_input_shows_the_program_and_the_api(imported) -> None:
    case = next(c for c in load_cases(imported.cases_path) if c.id == "kb-l2-001-gemm-relu")
    assert "KernelBench level 2 problem 1 (1_Gemm_ReLU)" in case.input
    assert "x = torch.relu(x)" in case.input  # the program as the problem states it
    assert "`gemm_weight`: the parameter `gemm.weight`" in case.input
    assert case.kernel.checks == ["build_toml", "compile", "run", "speedup"]
    assert case.model_extra["kernelbench"]["torch_ops"] == sorted(case.model_extra["kernelbench"]["torch_ops"])
    assert "aten::relu" in case.model_extra["kernelbench"]["torch_ops"]


def test_selection_and_levels(tmp_path: Path) -> None:
    assert parse_numbers("1-3,7", what="--problems") == [1, 2, 3, 7]
    assert parse_numbers("", what="--problems") is None
    with pytest.raises(UserError, match="--problems"):
        parse_numbers("1-x", what="--problems")
    folder = problems_dir(CHECKOUT)
    assert problems_dir(folder) == folder
    assert [p.stem for _, p in problem_files(folder, [1], [2, 3])] == ["2_Sum_reduction_over_a_dimension",
                                                                        "3_Linear"]
    with pytest.raises(UserError, match="level3"):
        problem_files(folder, [3], None)
    with pytest.raises(UserError, match="no level1"):
        problems_dir(tmp_path)
    with pytest.raises(UserError, match="none of the 1 selected"):
        import_kernelbench(CHECKOUT, tmp_path / "x.json", levels=[1], numbers=[4])
    assert not (tmp_path / "x.json").exists()


def test_baseline_compile_is_written_into_each_case(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "kb.json"
    assert main(["cases", "import-kernelbench", str(CHECKOUT), "--level", "1", "--problems", "1",
                 "-o", str(out), "--baseline", "compile"]) == 0
    (case,) = load_cases(out)
    assert case.kernel.baseline == "compile"
    assert main(["cases", "import-kernelbench", str(CHECKOUT), "--problems", "1", "-o", str(out),
                 "--baseline", "inductor"]) == 2  # a usage error, nothing written over the file
    assert load_cases(out)[0].kernel.baseline == "compile"
    capsys.readouterr()


def test_cli_prints_counts_per_level(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cases" / "kb.json"
    rc = main(["cases", "import-kernelbench", str(CHECKOUT), "--level", "1", "--problems", "1,4-5",
               "-o", str(out), "--cpu-max-mib", "4", "--verbose"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "level 1: imported 1, not imported 2 (1 a non-tensor output, 1 randomness inside forward)" in text
    assert "not imported: level 1 4_Dropout: randomness inside forward" in text
    assert (tmp_path / "cases" / "kb" / "kb_l1_001_leakyrelu" / "reference.py").is_file()
    assert main(["cases", "import-kernelbench", str(tmp_path), "-o", str(out)]) == 2
