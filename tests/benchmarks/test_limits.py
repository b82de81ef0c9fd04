"""benchmarks/limits.py on this machine: the CPU figure is measured, printed with its device and
threads, and never presented as a GPU figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_limits_benchmark_prints_the_cpu_figure(tmp_path):
    out = tmp_path / "limits.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "limits.py"), "--repeats", "1", "--threads", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CPU ") and ", 1 threads: STREAM-like copy" in lines[0]
    data = json.loads(out.read_text())
    assert data["cpu"]["threads"] == 1 and len(data["cpu"]["copy_bytes_per_s"]) == 1
    assert 1e8 < data["cpu"]["copy_bytes_per_s"][0] < 1e13
    if "cuda" not in data:  # a CPU machine: no GPU line carries a figure
        assert any(line.startswith("CUDA: ") and "nothing measured on a GPU" in line for line in lines)
        assert not any(line.startswith("GPU ") for line in lines)
