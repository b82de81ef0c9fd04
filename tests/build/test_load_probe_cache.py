"""The load probe's report is cached by content (issue 20): a warm re-check of the same .so
starts no child; a changed .so, or another API, probes again; a loader with no report is not cached."""

from __future__ import annotations

import json
from pathlib import Path

from harness.build import load_probe
from sandbox.programs.load_child import MARKER


class _Result:
    def __init__(self, stdout: str, *, timed_out: bool = False) -> None:
        self.stdout, self.stderr, self.returncode, self.timed_out = stdout, "", 0, timed_out


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "build" / "relu"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ._ops import ops\n")
    (pkg / "_ops.py").write_text("ops = None\n")
    (pkg / "_relu_cuda.abi3.so").write_bytes(b"\x7fELF fake object")
    return pkg


def test_a_warm_recheck_makes_no_probe(tmp_path: Path, monkeypatch) -> None:
    calls = []
    report = {"torch": "2.11.0", "ops": {"relu::relu": ["CUDA"]}, "api_callable": True}

    def child(cmd, **kw):
        calls.append(cmd)
        return _Result(MARKER + json.dumps(report) + "\n")

    monkeypatch.setattr(load_probe, "run_sandboxed", child)
    pkg = _package(tmp_path)
    probe = lambda api="relu": load_probe.probe_extension(pkg, "relu", api=api, workdir=tmp_path / "w")  # noqa: E731
    first, second = probe(), probe()
    assert len(calls) == 1 and first.ok and second.ok and second.cached and not first.cached
    assert second.reason == first.reason and second.ops == first.ops
    probe(api="other")  # another API is another question
    assert len(calls) == 2
    (pkg / "_relu_cuda.abi3.so").write_bytes(b"\x7fELF rebuilt object")
    assert not probe().cached and len(calls) == 3


def test_a_loader_without_a_report_is_asked_again(tmp_path: Path, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(load_probe, "run_sandboxed", lambda cmd, **kw: calls.append(cmd) or _Result("", timed_out=True))
    pkg = _package(tmp_path)
    for _ in range(2):
        assert not load_probe.probe_extension(pkg, "relu", api=None, workdir=tmp_path / "w").ok
    assert len(calls) == 2
