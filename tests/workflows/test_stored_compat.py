"""A run stored before the layout change (issue 23) still shows, rescores and exports with
today's code. The run is a labelled fixture (tests/fixtures/stored_runs/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "tests" / "fixtures" / "stored_runs" / "pre-layout.tar"
RUN_ID = "20261202-215450-97601381f3b6"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_a_pre_layout_run_shows_rescores_and_exports(tmp_path: Path) -> None:
    imported = _cli("runs", "import", str(ARCHIVE))
    assert imported.returncode == 0, imported.stderr
    assert RUN_ID in imported.stdout

    shown = _cli("runs", "show", RUN_ID, "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    trials = report["run"]["trials"]
    assert len(trials) == 8  # 2 cases x 2 arms x 2 runs
    # What the code that stored it showed: 2/4 per arm, the RMSNorm project passing its static
    # checks and the capability answer failing its markers.
    assert all(t["verdict"] == "fail" for t in trials if t["case_id"] == "cap")
    kernel = [t for t in trials if t["case_id"] == "rms"]
    assert all(t["verdict"] == "pass" for t in kernel)
    assert all({c["name"] for c in t["checks"]} >= {"build_toml", "scan"} for t in kernel)

    rescored = _cli("rescore", RUN_ID, "--level", "text", "--json")
    assert rescored.returncode == 0, rescored.stderr
    again = {(t["case_id"], t["arm"], t["run_index"]): t["verdict"] for t in json.loads(rescored.stdout)["run"]["trials"]}
    assert again == {(t["case_id"], t["arm"], t["run_index"]): t["verdict"] for t in trials}

    out = tmp_path / "again.tar"
    exported = _cli("runs", "export", RUN_ID, "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "runs.sqlite" in names and any(n.startswith(f"artifacts/{RUN_ID}") for n in names)
