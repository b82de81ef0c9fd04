"""The physics floor and the roofline figures: pure logic on fixed limits, then the CPU floor
against this machine's real STREAM-like measurement (an honest op is never flagged in 20 runs; a
call that skips the work is)."""

from __future__ import annotations

import time

import pytest
import torch

from harness.inputs.reference import load_reference_module, op_reference_path
from harness.limits import device as dev
from harness.limits.device import cpu_limits, cuda_limits
from harness.limits.roofline import (CPU_FLOOR_MARGIN, ROOFLINE_KEYS, floor_ns, floor_problem, fmt_fraction,
                                     roofline_metrics, roofline_summary)
from tests.limits.test_parts import H100_PCIE, H100_SXM, H200, UNKNOWN

MB = 1_000_000


def test_floor_depends_on_the_part():
    moved = 100 * MB  # 100 MB: 29.9 us on an H100 SXM, 50 us on a PCIe, 20.8 us on an H200
    sxm, pcie, h200 = (floor_ns(moved, cuda_limits(p, None)) for p in (H100_SXM, H100_PCIE, H200))
    assert (sxm, pcie, h200) == (pytest.approx(29_850.7, rel=1e-4), pytest.approx(50_000), pytest.approx(20_833.3, rel=1e-4))
    # an honest H200 kernel at 90% of its bandwidth beats the H100 floor but not its own
    honest_h200_ns = moved / (0.9 * 4.8e12) * 1e9
    assert floor_problem(honest_h200_ns, moved, cuda_limits(H100_SXM, None)) is not None
    assert floor_problem(honest_h200_ns, moved, cuda_limits(H200, None)) is None
    # on a PCIe part, a time the SXM floor lets through is caught
    assert floor_problem(35_000, moved, cuda_limits(H100_SXM, None)) is None
    reason = floor_problem(35_000, moved, cuda_limits(H100_PCIE, None))
    assert "NVIDIA H100 PCIe" in reason and "2,000 GB/s" in reason and "H100 PCIe" in reason


def test_no_floor_without_bytes_or_limit():
    assert floor_ns(None, cuda_limits(H200, None)) is None
    assert floor_ns(0, cuda_limits(H200, None)) is None
    assert floor_ns(100, cuda_limits(UNKNOWN, None)) is None  # unknown part, not measured
    assert floor_ns(100, None) is None
    assert floor_problem(1.0, None, cuda_limits(H200, None)) is None


def test_unknown_part_floor_uses_the_measurement():
    lim = cuda_limits(UNKNOWN, {"copy_bytes_per_s": 2.5e12})
    assert floor_ns(2.5e12, lim) == pytest.approx(1e9)
    assert "(measured) on NVIDIA Hopper Engineering Sample: device-to-device copy" in floor_problem(1e8, 2.5e12, lim)


def test_cpu_floor_has_a_margin():
    lim = cpu_limits("AMD EPYC", 2, {"copy_bytes_per_s": 1e10, "threads": 2})
    assert floor_ns(1e9, lim) == pytest.approx(1e9 / (1e10 * CPU_FLOOR_MARGIN) * 1e9)
    reason = floor_problem(1e6, 1e9, lim)
    assert "CPU AMD EPYC, 2 threads" in reason and "STREAM-like copy, 2 threads" in reason


def test_roofline_metrics_memory_and_compute_bound():
    h200 = cuda_limits(H200, {"copy_bytes_per_s": 4.3e12, "bf16_flops_per_s": 7.0e14, "matmul_n": 8192})
    # rmsnorm-like: 64 MiB moved, few flops, 20 us -> 3.36 TB/s = 70% of 4.8 TB/s; memory bound
    m = roofline_metrics(bytes_moved=67_108_864, flops=40_000_000, seconds=20e-6, limits=h200)
    assert set(m) == set(ROOFLINE_KEYS)
    assert m["limits_device"] == "NVIDIA H200" and m["limits_part"] == "H200 SXM"
    assert m["bandwidth_gbs"] == pytest.approx(3355.4, rel=1e-4)
    assert m["bandwidth_limit_gbs"] == pytest.approx(4800) and m["bandwidth_limit_basis"] == "table"
    assert m["bandwidth_fraction"] == pytest.approx(0.699, rel=1e-3)
    assert m["compute_limit_gflops"] == pytest.approx(989_500) and m["bound"] == "memory"
    assert m["roofline_fraction"] == pytest.approx(m["bandwidth_fraction"])
    assert m["floor_us"] == pytest.approx(13.98, rel=1e-3)
    # a 4096^3 matmul in 200 us: 687 TFLOPS = 69% of the dense BF16 peak; compute bound
    mm = roofline_metrics(bytes_moved=3 * 4096 * 4096 * 2, flops=2 * 4096 ** 3, seconds=200e-6, limits=h200)
    assert mm["bound"] == "compute" and mm["compute_fraction"] == pytest.approx(0.6946, rel=1e-3)
    assert mm["roofline_fraction"] == pytest.approx(mm["compute_fraction"])


def test_roofline_metrics_with_uncounted_figures():
    cpu = cpu_limits("AMD EPYC", 2, {"copy_bytes_per_s": 1e10})
    m = roofline_metrics(bytes_moved=None, flops=None, seconds=1e-3, limits=cpu)
    assert m["bytes_moved"] is None and m["bandwidth_fraction"] is None and m["roofline_fraction"] is None
    assert m["limits_device"] == "CPU AMD EPYC, 2 threads" and m["compute_limit_gflops"] is None
    none = roofline_metrics(bytes_moved=1000, flops=10, seconds=1e-3, limits=None)
    assert none["limits_device"] is None and none["limits_note"] == "no limits known for this device"
    assert none["bandwidth_gbs"] == pytest.approx(1e-3)


@pytest.fixture(scope="module")
def this_cpu(tmp_path_factory):
    """This machine's CPU limits, measured for real (threads: the test process's torch threads)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KERNELGRADE_HOME", str(tmp_path_factory.mktemp("home")))
    mp.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    try:
        yield dev.measure_cpu_limits()
    finally:
        mp.undo()


def _timed(fn, args, flush: torch.Tensor) -> int:
    flush.fill_(1)  # evict the inputs from the LLC, as the timing's parent does between calls
    t0 = time.perf_counter_ns()
    fn(*args)
    return time.perf_counter_ns() - t0


def test_cpu_floor_on_real_bandwidth(this_cpu):
    """RMSNorm's reference (torch's own CPU kernels: no slower than the CPU twin) on a 32 MiB input,
    20 timed calls with the LLC flushed before each: none beats the floor. A 'kernel' that hands
    back a ready buffer without reading its input does, every time."""
    assert this_cpu.bandwidth.value and this_cpu.bandwidth.basis == "measured"
    ref = load_reference_module(op_reference_path("rmsnorm"))
    shape = (2048, 4096)
    x, weight, eps = ref.make_inputs(shape, "float32", torch.Generator().manual_seed(0))
    moved = ref.bytes_moved(shape, "float32")
    flush = torch.empty(64 * 2 ** 20, dtype=torch.uint8)
    ref.reference(x, weight, eps)
    honest = [_timed(ref.reference, (x, weight, eps), flush) for _ in range(20)]
    assert [floor_problem(t, moved, this_cpu) for t in honest] == [None] * 20
    ready = torch.empty_like(x)
    cheat = [_timed(lambda *a: ready, (x, weight, eps), flush) for _ in range(20)]
    flagged = [floor_problem(t, moved, this_cpu) for t in cheat]
    assert all(f is not None and this_cpu.name in f for f in flagged)


def test_summary_clause_names_fraction_limit_and_device():
    h200 = cuda_limits(H200, None)
    m = roofline_metrics(bytes_moved=67_108_864, flops=None, seconds=20e-6, limits=h200)
    assert roofline_summary(m) == "70% of the bandwidth limit (4,800 GB/s, table) of NVIDIA H200"
    slow = roofline_metrics(bytes_moved=1_000_000, flops=None, seconds=1e-3, limits=cpu_limits("X", 2, {"copy_bytes_per_s": 3e10}))
    assert roofline_summary(slow) == "3.3% of the bandwidth limit (30 GB/s, measured) of CPU X, 2 threads"
    assert fmt_fraction(0.0012) == "0.12%" and roofline_summary(roofline_metrics(bytes_moved=None, flops=None,
                                                                                 seconds=1.0, limits=h200)) is None


@pytest.mark.slow
def test_honest_cpu_twin_is_never_flagged_in_20_runs(this_cpu, tmp_path):
    """The rmsnorm CPU twin (kernels_reference/rmsnorm, built by the run check's own build path and
    cache), called through its package's API on a 16 MiB input, 20 runs with the LLC flushed before
    each: never below the floor at this machine's measured bandwidth."""
    import importlib.util
    import sys

    from harness.build.cpu_extension import build_cpu_extension
    from harness.common.paths import asset_dir
    from harness.project.info import read_project

    built = build_cpu_extension(read_project(asset_dir("kernels_reference") / "rmsnorm"), artifacts=tmp_path,
                                timeout_s=900)
    assert built.ok and built.package_dir is not None, built.reason
    spec = importlib.util.spec_from_file_location("kg_limits_rmsnorm_twin", built.package_dir / "__init__.py",
                                                  submodule_search_locations=[str(built.package_dir)])
    twin = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = twin
    spec.loader.exec_module(twin)
    ref = load_reference_module(op_reference_path("rmsnorm"))
    shape = (1024, 4096)
    x, weight, eps = ref.make_inputs(shape, "float32", torch.Generator().manual_seed(1))
    torch.testing.assert_close(twin.rms_norm(x, weight, eps), ref.reference(x, weight, eps), atol=1e-4, rtol=1e-5)
    moved = ref.bytes_moved(shape, "float32")
    flush = torch.empty(64 * 2 ** 20, dtype=torch.uint8)
    times = [_timed(twin.rms_norm, (x, weight, eps), flush) for _ in range(20)]
    assert [floor_problem(t, moved, this_cpu) for t in times] == [None] * 20
