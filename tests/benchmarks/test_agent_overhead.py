"""benchmarks/agent_overhead.py runs and prints both figures (the targets are its own exit code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_agent_overhead_benchmark_prints_both_figures() -> None:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "agent_overhead.py"), "--trials", "2",
                          "--hits", "5"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode in (0, 1), out.stderr  # 1: a target missed on a loaded machine, still a result
    assert "harness cost per turn: median" in out.stdout and "target <= 5 ms" in out.stdout
    assert "run_checks on an unchanged workspace (cache hit): median" in out.stdout
