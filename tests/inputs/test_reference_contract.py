"""References as users write them (issue 19 item 10): DTYPES as torch dtypes or names,
TOLERANCE keyed by either, make_inputs / bytes_moved / flops handed a torch.dtype (a reference
written for names still works), and a reference that fails while making inputs is one clear
line naming the file and the call (exit 2), never an internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.cli.main import main
from harness.common.errors import UserError
from harness.common.paths import repo_root
from harness.inputs.reference import load_reference_module, tolerance

RMSNORM = repo_root() / "kernels_reference" / "rmsnorm"

#: A user's reference for kernels_reference/rmsnorm's op, in torch's own terms.
DTYPE_REFERENCE = '''"""Labelled fixture: DTYPES as torch dtypes, make_inputs insisting on a torch.dtype."""
import torch

API = "rms_norm"
SHAPES = [(4, 256)]
TEST_SHAPES = [(4, 256)]
DTYPES = [torch.float32, torch.bfloat16]
TOLERANCE = {torch.bfloat16: (2e-2, 2e-2)}


def reference(x, weight, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)


def make_inputs(shape, dtype, generator):
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"wanted a torch.dtype, got {dtype!r}")
    x = torch.randn(shape, generator=generator, device=generator.device).to(dtype)
    return (x, torch.ones(shape[-1], device=generator.device, dtype=dtype), 1e-6)


def bytes_moved(shape, dtype):
    return 3 * shape[0] * shape[1] * torch.empty((), dtype=dtype).element_size()


def flops(shape, dtype):
    return 4 * shape[0] * shape[1]
'''


def _write(tmp_path: Path, text: str, name: str = "reference.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_torch_dtypes_become_names_and_the_calls_get_a_torch_dtype(tmp_path: Path) -> None:
    ref = load_reference_module(_write(tmp_path, DTYPE_REFERENCE))
    assert ref.DTYPES == ["float32", "bfloat16"]
    assert tolerance(ref, "bfloat16") == (2e-2, 2e-2) and tolerance(ref, "float32") == (1e-4, 1e-4)
    x, w, _ = ref.make_inputs((4, 256), "bfloat16", torch.Generator().manual_seed(0))
    assert x.dtype == w.dtype == torch.bfloat16
    assert ref.bytes_moved((4, 256), "float32") == 3 * 4 * 256 * 4


def test_a_reference_written_for_dtype_names_still_works(tmp_path: Path) -> None:
    text = DTYPE_REFERENCE.replace("DTYPES = [torch.float32, torch.bfloat16]", 'DTYPES = ["float32"]').replace(
        "    if not isinstance(dtype, torch.dtype):\n        raise TypeError(f\"wanted a torch.dtype, got {dtype!r}\")\n"
        "    x = torch.randn(shape, generator=generator, device=generator.device).to(dtype)\n",
        "    x = torch.randn(shape, generator=generator).to(getattr(torch, dtype))\n    dtype = getattr(torch, dtype)\n")
    ref = load_reference_module(_write(tmp_path, text))
    assert ref.make_inputs((2, 8), "float32", torch.Generator().manual_seed(0))[0].dtype == torch.float32


def test_a_reference_that_fails_making_inputs_is_a_user_error_naming_the_call(tmp_path: Path) -> None:
    path = _write(tmp_path, DTYPE_REFERENCE.replace('    if not isinstance(dtype, torch.dtype):\n',
                                                    '    if True:\n'))
    ref = load_reference_module(path)
    with pytest.raises(UserError, match=r"make_inputs\(\(4, 256\), float32\) raised TypeError: wanted a torch.dtype") as got:
        ref.make_inputs((4, 256), "float32", torch.Generator().manual_seed(0))
    assert str(path.resolve()) in str(got.value)


@pytest.mark.slow
def test_check_runs_a_dtype_reference_and_a_broken_one_exits_2(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))
    good = _write(tmp_path, DTYPE_REFERENCE)
    assert main(["check", str(RMSNORM), "--level", "run", "--device", "cpu", "--reference", str(good), "--json"]) == 0
    run = next(r for r in json.loads(capsys.readouterr().out)["results"] if r["name"] == "run")
    assert run["status"] == "pass" and "2 dtypes" in run["reason"], run["reason"]
    bad = _write(tmp_path, DTYPE_REFERENCE.replace("    x = torch.randn(", "    raise ValueError('no such size')\n    x = torch.randn("),
                 "bad_reference.py")
    assert main(["check", str(RMSNORM), "--level", "run", "--device", "cpu", "--reference", str(bad)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"reference {bad.resolve()}: make_inputs((4, 256), float32) raised ValueError: no such size" in err


@pytest.mark.slow
def test_a_reference_that_fails_computing_is_one_line_and_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    """The reference's own failure (in its child) names the file and the call; it is not kernelgrade's error."""
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))
    bad = _write(tmp_path, DTYPE_REFERENCE.replace("    xf = x.float()\n", "    raise RuntimeError('unsupported eps')\n"),
                 "failing_reference.py")
    assert main(["check", str(RMSNORM), "--level", "run", "--device", "cpu", "--reference", str(bad)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"reference {bad.resolve()}: reference((" in err and "raised RuntimeError: unsupported eps" in err
    assert "internal error" not in err
