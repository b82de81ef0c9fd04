"""Limits per device: table vs measured (the larger wins), a part not in the table measured only,
the CPU's STREAM-like probe measured for real, and the cache per device."""

from __future__ import annotations

import json

import pytest

from harness.limits import device as dev
from harness.limits import probe
from harness.limits.device import combine, cpu_limits, cuda_limits
from harness.limits.parts import PARTS
from tests.limits.test_parts import H100_PCIE, H100_SXM, H200, MIG, UNKNOWN


def test_combine_takes_the_larger_and_says_which():
    assert combine("bandwidth", table=3.35e12, measured=3.0e12).basis == "table"
    lim = combine("bandwidth", table=4.8e12, measured=4.9e12, measured_what="copy")
    assert (lim.value, lim.basis, lim.table, lim.measured, lim.what) == (4.9e12, "measured", 4.8e12, 4.9e12, "copy")
    assert combine("compute", table=None, measured=7e14).basis == "measured"
    none = combine("compute", table=None, measured=None)
    assert none.value is None and none.basis == "none"


def test_floor_limits_follow_the_part():
    sxm, pcie, h200 = (cuda_limits(p, None) for p in (H100_SXM, H100_PCIE, H200))
    assert (sxm.part, sxm.bandwidth.value) == ("H100 SXM5", 3.35e12)
    assert (pcie.part, pcie.bandwidth.value) == ("H100 PCIe", 2.0e12)
    assert (h200.part, h200.bandwidth.value, h200.compute.value) == ("H200 SXM", 4.8e12, 989.5e12)
    assert "NVIDIA H200 Tensor Core GPU datasheet" in h200.bandwidth.what and h200.name == "NVIDIA H200"
    assert "no measurement" in h200.note


def test_measured_above_the_table_wins_and_below_does_not():
    measured = {"copy_bytes_per_s": 4.3e12, "bf16_flops_per_s": 7.1e14, "matmul_n": 8192}
    h200 = cuda_limits(H200, measured)
    assert h200.bandwidth.basis == "table" and h200.bandwidth.measured == 4.3e12
    sxm = cuda_limits(H100_SXM, {"copy_bytes_per_s": 3.4e12})
    assert sxm.bandwidth.basis == "measured" and sxm.bandwidth.value == 3.4e12 and sxm.note == ""


@pytest.mark.parametrize("props", [UNKNOWN, MIG])
def test_part_not_in_table_uses_measured_only_and_says_so(props):
    lim = cuda_limits(props, {"copy_bytes_per_s": 1.1e12, "bf16_flops_per_s": 3e14, "matmul_n": 8192})
    assert lim.part is None and lim.bandwidth.table is None
    assert (lim.bandwidth.value, lim.bandwidth.basis) == (1.1e12, "measured")
    assert "measured limits only" in lim.note
    bare = cuda_limits(props, None)
    assert bare.bandwidth.value is None and "not measured" in bare.note


def test_keys_name_device_driver_and_threads():
    assert "550.54.15" in dev.cuda_key(H100_SXM) and "H100" in dev.cuda_key(H100_SXM)
    assert dev.cpu_key("AMD EPYC 9654", 4) != dev.cpu_key("AMD EPYC 9654", 8)


def test_timing_threads_follow_omp(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert dev.timing_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert dev.timing_threads() >= 1


def test_stream_array_is_at_least_four_times_the_llc():
    assert probe.stream_copy_bytes(32 * probe.MIB) == 128 * probe.MIB
    assert probe.stream_copy_bytes(1 * probe.MIB) == 64 * probe.MIB
    assert probe.stream_copy_bytes(1024 * probe.MIB) == 512 * probe.MIB


def test_cpu_probe_measures_for_real_and_is_cached(tmp_path, monkeypatch):
    """The STREAM-like copy runs in a subprocess with the timing's threads; the second call reads the cache."""
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    lim = dev.measure_cpu_limits()
    assert lim.device == "cpu" and lim.part is None and ", 1 threads" in lim.name
    assert lim.bandwidth.basis == "measured" and "1 threads" in lim.bandwidth.what
    # a real memory system: more than 100 MB/s, less than 10 TB/s
    assert 1e8 < lim.bandwidth.value < 1e13
    assert lim.compute.value is None and "no compute limit" in lim.compute.what and "measured" in lim.note
    files = list((tmp_path / "limits").glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["threads"] == 1 and data["array_bytes"] >= 64 * probe.MIB and data["measured_at"]
    monkeypatch.setattr(dev, "run_probe", lambda *a, **k: pytest.fail("measured again despite the cache"))
    again = dev.measure_cpu_limits()
    assert again.bandwidth.value == lim.bandwidth.value


def test_failed_probe_gives_no_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path))
    monkeypatch.setattr(dev, "run_probe", lambda *a, **k: None)
    lim = dev.measure_cpu_limits()
    assert lim.bandwidth.value is None and "not measured" in lim.note
    assert not list((tmp_path / "limits").glob("*.json"))
    dev._identify.cache_clear()
    assert dev.measure_cuda_limits() is None
    # the speedup check still gets a floor: the table's highest figures, never below what a part can do
    fallback = dev.device_limits("cuda")
    assert fallback.name == "GPU (not identified)" and fallback.bandwidth.value == 4.9e12
    assert "GH200 (144 GB HBM3e)" in fallback.bandwidth.what and "could not identify" in fallback.note
    assert fallback.bandwidth.value == max(p.bandwidth for p in PARTS)
    dev._identify.cache_clear()


def test_cpu_limits_name_the_cpu_and_threads():
    lim = cpu_limits("AMD EPYC", 2, {"copy_bytes_per_s": 8e10, "threads": 2})
    assert lim.name == "CPU AMD EPYC, 2 threads" and lim.bandwidth.value == 8e10


@pytest.mark.gpu
def test_cuda_probe_on_the_device(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the GPU probe (copy bandwidth, BF16 matmul) needs one")
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path))
    dev._identify.cache_clear()
    lim = dev.measure_cuda_limits()
    assert lim is not None and lim.bandwidth.measured and lim.compute.measured
    assert lim.bandwidth.value >= lim.bandwidth.measured
    if lim.part is not None:  # a measured copy within reach of the datasheet peak
        assert 0.3 * lim.bandwidth.table < lim.bandwidth.measured < 1.2 * lim.bandwidth.table


def test_stale_cpu_entry_is_measured_again_and_the_larger_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    key = dev.cpu_key(dev.cpu_model(), 2)
    path = tmp_path / "limits" / f"{key}.json"
    path.parent.mkdir(parents=True)
    calls = []
    monkeypatch.setattr(dev, "run_probe", lambda *a, **k: calls.append(a) or {"copy_bytes_per_s": 5e10, "threads": 2})
    path.write_text(json.dumps({"copy_bytes_per_s": 9e10, "threads": 2, "checked_at": "2020-01-01T00:00:00+00:00"}))
    assert dev.measure_cpu_limits().bandwidth.value == 9e10 and len(calls) == 1  # stale: asked again, old one larger
    assert dev.measure_cpu_limits().bandwidth.value == 9e10 and len(calls) == 1  # fresh now: not asked
    path.write_text(json.dumps({"copy_bytes_per_s": 1e10, "threads": 2, "checked_at": "2020-01-01T00:00:00+00:00"}))
    assert dev.measure_cpu_limits().bandwidth.value == 5e10 and len(calls) == 2
    assert json.loads(path.read_text())["copy_bytes_per_s"] == 5e10
