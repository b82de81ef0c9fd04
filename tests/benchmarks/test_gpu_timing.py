"""benchmarks/gpu_timing.py and scripts/validate_gpu.sh: clean refusals without a CUDA device,
clear argument errors, and the pure helpers (ratio, spread, targets, tables) on given numbers.
The figures themselves come only from a GPU (the `gpu` test at the end)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "gpu_timing.py"
SCRIPT = REPO / "scripts" / "validate_gpu.sh"
HAS_CUDA = torch.cuda.is_available()
no_device_only = pytest.mark.skipif(HAS_CUDA, reason="this host has a CUDA device: the refusal is not reachable")


def _load():
    spec = importlib.util.spec_from_file_location("gpu_timing_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


gt = _load()


def _one_line_refusal(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------- refusals


@no_device_only
def test_benchmark_refuses_without_a_device() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--ops", "rmsnorm"], capture_output=True, text=True, cwd=REPO)
    line = _one_line_refusal(proc)
    assert line.startswith("needs a CUDA device: ")
    assert torch.__version__ in line
    assert proc.stdout == ""  # nothing measured, nothing printed as if it were


@no_device_only
def test_validate_script_refuses_without_a_device(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    env = {"PATH": "/usr/bin:/bin", "KG_PYTHON": sys.executable, "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(SCRIPT), str(report)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert _one_line_refusal(proc).startswith("needs a CUDA device: ")
    assert not report.exists() and not (tmp_path / "report.d").exists()


def test_validate_script_refuses_without_python(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "KG_PYTHON": str(tmp_path / "no-python")}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, cwd=tmp_path, env=env)
    line = _one_line_refusal(proc)
    assert "scripts/setup.sh" in line and "no-python" in line


def test_cuda_build_without_a_gpu_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A CUDA build of torch on a host without a GPU (as in /work/venv-cuda) gets its own reason."""
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gt.main(["--ops", "softmax"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"needs a CUDA device: torch {torch.__version__} (CUDA 13.0) sees no GPU: " \
                  "torch.cuda.is_available() is False"


def test_cpu_build_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    assert gt.main(["--probe"]) == 2
    assert capsys.readouterr().err.strip() == f"needs a CUDA device: torch {torch.__version__} is a CPU build"


# ----------------------------------------------------------------------------- arguments


def test_reference_ops_are_the_eight_ops() -> None:
    assert gt.reference_ops() == ["geglu", "gelu_tanh", "layernorm_adaln", "matmul", "residual_rmsnorm",
                                  "rmsnorm", "rotary", "softmax"]


def test_ops_selection() -> None:
    assert gt.parse_args(["--ops", "softmax", "rmsnorm"]).ops == ["softmax", "rmsnorm"]
    args = gt.parse_args([])
    assert args.ops is None and args.repeats == 3


@pytest.mark.parametrize("argv, message", [
    (["--ops", "rmsnorm", "nope"], "unknown op 'nope': choose from geglu, gelu_tanh,"),
    (["--ops", "bad"], "unknown op 'bad'"),  # kernels_reference/bad holds failing fixtures, not an op
    (["--ops"], "expected at least one argument"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--repeats", "x"], "invalid int value"),
])
def test_argument_errors_are_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        gt.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_argument_errors_come_before_the_device_check() -> None:
    """On any host, a typo is reported as a typo, not as a missing device."""
    proc = subprocess.run([sys.executable, str(BENCH), "--ops", "rmsnorn"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "unknown op 'rmsnorn'" in proc.stderr and "needs a CUDA device" not in proc.stderr


# ----------------------------------------------------------------------------- helpers


def test_ratio_and_spread() -> None:
    assert gt.ratio(103.0, 100.0) == pytest.approx(1.03)
    assert gt.spread([100.0, 102.0, 101.0]) == pytest.approx(0.02 / 1.01)
    assert gt.spread([50.0]) == 0.0
    assert gt.spread([10.0, 10.0, 10.0]) == 0.0


@pytest.mark.parametrize("ratio, spread, us, ok, words", [
    (1.00, 0.01, 50.0, True, "pass"),
    (1.029, 0.019, 50.0, True, "pass"),
    (0.971, 0.0, 50.0, True, "pass"),
    (1.031, 0.0, 50.0, False, "ratio 1.031 outside 1 +- 3%"),
    (0.96, 0.0, 50.0, False, "ratio 0.960 outside"),
    (1.0, 0.025, 20.0, False, "spread 2.5% > 2%"),
    (1.0, 0.10, 19.9, True, "spread not gated below 20 us"),
    (1.05, 0.05, 30.0, False, "outside 1 +- 3%; spread 5.0% > 2%"),
])
def test_verdict_against_the_issue_targets(ratio: float, spread: float, us: float, ok: bool, words: str) -> None:
    got_ok, why = gt.verdict(ratio, spread, us)
    assert got_ok is ok
    assert words in why
    assert why.startswith("pass" if ok else "FAIL: ")


def _rows():
    return [gt.Row(op="rmsnorm", shape="4096x8192", dtype="bfloat16", ours_ns=[41000.0, 40000.0, 40400.0],
                   bench_ns=[40000.0, 40200.0, 39800.0]),
            gt.Row(op="softmax", shape="64x1000", dtype="float32", ours_ns=[9000.0, 9900.0],
                   bench_ns=[8000.0, 8000.0])]


def test_row_figures() -> None:
    fast, short = _rows()
    assert fast.ours_us == pytest.approx(40.4) and fast.bench_us == pytest.approx(40.0)
    assert fast.ratio == pytest.approx(1.01)
    assert fast.cells() == ["rmsnorm", "4096x8192", "bfloat16", "40.40", "40.00", "1.010", "2.5%", "1.0%",
                            "FAIL: spread 2.5% > 2%"]
    assert short.ours_us == pytest.approx(9.45) and short.ratio == pytest.approx(9.45 / 8.0)
    assert short.cells()[-1] == "FAIL: ratio 1.181 outside 1 +- 3%"


def test_markdown_table() -> None:
    lines = gt.markdown_table(_rows()).splitlines()
    assert lines[0] == ("| op | shape | dtype | ours_us | do_bench_us | ours/do_bench | spread_ours | "
                        "spread_do_bench | target |")
    assert lines[1] == "|" + "---|" * 9
    assert lines[2] == ("| rmsnorm | 4096x8192 | bfloat16 | 40.40 | 40.00 | 1.010 | 2.5% | 1.0% | "
                        "FAIL: spread 2.5% > 2% |")
    assert len(lines) == 4 and lines[3].startswith("| softmax | 64x1000 | float32 | 9.45 | 8.00 | 1.181 |")


def test_text_table_aligns_columns() -> None:
    lines = gt.text_table(_rows()).splitlines()
    assert len(lines) == 3
    assert len({len(line) for line in lines}) == 1  # right-justified to common widths
    assert lines[1].split() == ["rmsnorm", "4096x8192", "bfloat16", "40.40", "40.00", "1.010", "2.5%", "1.0%",
                                "FAIL:", "spread", "2.5%", ">", "2%"]


def test_measure_alternates_ours_and_do_bench() -> None:
    """The per-repeat order swaps, so neither side always runs right after the other."""
    from types import SimpleNamespace

    session = gt.OpSession.__new__(gt.OpSession)  # skip the checks: they need a CUDA device
    session.op = "rmsnorm"
    session.args = SimpleNamespace(repeats=3)
    session.plan = SimpleNamespace(timing=SimpleNamespace(shape=[4096, 8192], dtype="bfloat16"))
    order: list[str] = []
    session.ours_ns = lambda: order.append("ours") or 1000.0 * len(order)
    session.bench_ns = lambda repeat: order.append(f"bench{repeat}") or 500.0 * len(order)
    row = session.measure()
    assert order == ["ours", "bench0", "bench1", "ours", "ours", "bench2"]
    assert row.ours_ns == [1000.0, 4000.0, 5000.0] and row.bench_ns == [1000.0, 1500.0, 3000.0]
    assert (row.op, row.shape, row.dtype) == ("rmsnorm", "4096x8192", "bfloat16")


# ----------------------------------------------------------------------------- on a GPU


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (torch.cuda.is_available() is False)")
def test_benchmark_on_gpu_meets_the_targets(tmp_path: Path) -> None:
    """One op, two repeats: ours within +-3% of do_bench and steady; the markdown holds the row."""
    md = tmp_path / "timing.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--ops", "rmsnorm", "--repeats", "2", "--markdown", str(md)],
                          capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    row = next(line for line in md.read_text().splitlines() if line.startswith("| rmsnorm |"))
    assert float(row.split("|")[6]) > 0  # ours/do_bench
    assert proc.returncode == 0, proc.stdout[-3000:]
