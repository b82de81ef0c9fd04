"""Roofline per timed kernel in the terminal, HTML and JSON reports: figures against the limits of
the device each kernel was timed on, one group per device, never pooled; a run graded before the
limits existed shows no fraction."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from harness.common.results import CheckResult
from harness.limits.device import cpu_limits, cuda_limits
from harness.limits.roofline import roofline_metrics
from harness.report.html import render_html
from harness.report.json_out import from_json, to_json
from harness.report.model import ReportRun, ReportTrial
from harness.report.summary import summarize
from harness.report.terminal import render_terminal
from tests.limits.test_parts import H100_PCIE, H200

CPU = cpu_limits("AMD EPYC", 2, {"copy_bytes_per_s": 8.0e10, "threads": 2})
GPU_H200 = cuda_limits(H200, {"copy_bytes_per_s": 4.3e12, "bf16_flops_per_s": 7.0e14, "matmul_n": 8192})
GPU_PCIE = cuda_limits(H100_PCIE, None)


def _timed(case: str, idx: int, device: str, limits, *, moved, flops, median_us: float) -> ReportTrial:
    metrics = {"speedup": 1.5, "candidate_median_us": median_us, "reference_median_us": 1.5 * median_us,
               **roofline_metrics(bytes_moved=moved, flops=flops, seconds=median_us / 1e6, limits=limits)}
    checks = [CheckResult(name="run", status="pass", reason="ok", device=device),
              CheckResult(name="speedup", status="pass", reason="1.5x", metrics=metrics, device=device)]
    return ReportTrial(run_id="r-roof", case_id=case, model="m", arm="with_skill", run_index=idx, verdict="pass",
                       checks=checks, device=device)


def _legacy() -> ReportTrial:
    """A trial graded before issue 22: bandwidth_fraction against a fixed H100 figure, no limits."""
    metrics = {"speedup": 2.0, "candidate_median_us": 10.0, "bytes_moved": 1000, "bandwidth_gbs": 0.1,
               "gflops": 0.01, "bandwidth_fraction": 0.5}
    checks = [CheckResult(name="speedup", status="pass", reason="2x", metrics=metrics, device="cuda")]
    return ReportTrial(run_id="r-roof", case_id="old", model="m", arm="with_skill", run_index=0, verdict="pass",
                       checks=checks, device="cuda")


@pytest.fixture(scope="module")
def run() -> ReportRun:
    trials = [
        # rmsnorm-ish on CPU: 48 MiB in 2 ms = 25.2 GB/s, 31% of 80 GB/s; no compute limit on CPU
        _timed("rmsnorm", 0, "cpu", CPU, moved=50_331_648, flops=None, median_us=2000.0),
        # the same kernel on two GPUs: each against its own part
        _timed("rmsnorm", 1, "cuda", GPU_H200, moved=50_331_648, flops=10_000_000, median_us=15.0),
        _timed("rmsnorm", 2, "cuda", GPU_PCIE, moved=50_331_648, flops=10_000_000, median_us=30.0),
        _timed("matmul", 0, "cuda", GPU_H200, moved=100_663_296, flops=2 * 4096 ** 3, median_us=250.0),
        _legacy(),
    ]
    return ReportRun(run_id="r-roof", level="run", device="cuda", trials=trials)


def test_grouped_by_device_never_pooled(run):
    groups = {d.device: d for d in summarize(run, n_boot=200).roofline}
    assert sorted(groups) == ["CPU AMD EPYC, 2 threads", "GPU (limits not recorded)", "NVIDIA H100 PCIe", "NVIDIA H200"]
    h200, pcie, cpu = groups["NVIDIA H200"], groups["NVIDIA H100 PCIe"], groups["CPU AMD EPYC, 2 threads"]
    assert [r.case_id for r in h200.rows] == ["rmsnorm", "matmul"] and len(pcie.rows) == 1 and len(cpu.rows) == 1
    assert (h200.part, h200.bandwidth_limit_gbs, h200.bandwidth_limit_basis) == ("H200 SXM", 4800, "table")
    assert (pcie.bandwidth_limit_gbs, pcie.compute_limit_gflops) == (2000, 756_500)
    # 50.3 MB in 15 us = 3,355 GB/s: 70% of the H200's 4.8 TB/s; the same bytes in 30 us on the PCIe: 84%
    assert h200.rows[0].bandwidth_fraction == pytest.approx(0.699, rel=1e-3)
    assert pcie.rows[0].bandwidth_fraction == pytest.approx(0.8389, rel=1e-3)
    assert h200.rows[1].bound == "compute" and h200.rows[1].compute_fraction == pytest.approx(0.5556, rel=1e-3)
    assert cpu.rows[0].flops is None and cpu.rows[0].compute_fraction is None
    assert cpu.rows[0].bandwidth_fraction == pytest.approx(25.166 / 80, rel=1e-3)
    assert cpu.compute_limit_gflops is None and cpu.compute_limit_what == "no compute limit on CPU"
    legacy = groups["GPU (limits not recorded)"]
    assert legacy.rows[0].bandwidth_fraction is None and legacy.bandwidth_limit_gbs is None


def test_terminal_shows_each_device_with_its_limits(run):
    buf = io.StringIO()
    render_terminal(run, Console(file=buf, width=250, force_terminal=False), summary=summarize(run, n_boot=200))
    out = buf.getvalue()
    for text in ("Roofline per kernel on NVIDIA H200", "Roofline per kernel on NVIDIA H100 PCIe",
                 "Roofline per kernel on CPU AMD EPYC, 2 threads", "3,355 GB/s (70%)", "1,678 GB/s (84%)",
                 "bandwidth 4,800 GB/s (table: peak memory bandwidth, H200 SXM", "(measured: STREAM-like copy, 2 threads",
                 "compute 989.5 TFLOP/s (table: dense BF16", "not counted", "compute (56%)",
                 "graded before limits per device were recorded"):
        assert text in out, text


def test_html_has_the_roofline_section(run):
    html = render_html(run, summary=summarize(run, n_boot=200))
    assert 'id="roofline"' in html
    section = html[html.index('id="roofline"'):html.index('id="details"')]
    for text in ("NVIDIA H200", "NVIDIA H100 PCIe", "CPU AMD EPYC, 2 threads", "3,355 GB/s (70%)",
                 "peak memory bandwidth, H200 SXM", "(limits not recorded)"):
        assert text in section, text
    assert "roofline on NVIDIA H200: 50,331,648 bytes" in html


def test_json_carries_the_roofline(run):
    doc = to_json(run, summary=summarize(run, n_boot=200))
    back = from_json(json.loads(json.dumps(doc)))
    groups = {d["device"]: d for d in doc["summary"]["roofline"]}
    assert groups["NVIDIA H200"]["bandwidth_limit_what"].startswith("peak memory bandwidth, H200 SXM")
    assert groups["NVIDIA H200"]["rows"][0]["bytes_moved"] == 50_331_648
    assert [d.device for d in back.summary.roofline] == sorted(groups)
    speed = next(c for c in doc["run"]["trials"][1]["checks"] if c["name"] == "speedup")
    assert speed["metrics"]["limits_device"] == "NVIDIA H200" and speed["metrics"]["bandwidth_limit_basis"] == "table"


def test_untimed_runs_have_no_roofline():
    trial = ReportTrial(run_id="r", case_id="c", model="m", arm="baseline", run_index=0, verdict="fail",
                        checks=[CheckResult.skip("speedup", "blocked by run")])
    assert summarize(ReportRun(run_id="r", trials=[trial]), n_boot=100).roofline == []
