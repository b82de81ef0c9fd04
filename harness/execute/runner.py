"""The runner, parent side: one code path for cpu and cuda (DESIGN.md "Runner and trust boundary").

  correctness:  candidate child (sandbox.programs.runner_child) calls the API on inputs from secret
                seeds and writes outputs; afterwards the reference child
                (sandbox.programs.reference_child, never imports the candidate) regenerates the
                pristine inputs from the same seeds and computes reference outputs; the
                parent compares and applies the anti-cheat rules (harness/execute/judge.py).
  timing:       rounds of candidate timing child / reference timing child, alternating;
                fresh inputs for every call, outputs of sampled timed calls checked.

A child that crashes, hangs or runs out of memory costs only the call it was on: the
parent restarts a child for the remaining calls.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import signal
import statistics
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from harness.execute.programs import programs_root
from sandbox.programs.child_common import CallSpec, ChildSpec, TimingSpec, seed_for
from sandbox.exec import ExecResult
from sandbox.run import run_sandboxed
from sandbox.limits import Limits

log = logging.getLogger(__name__)

MAX_PIPE_BYTES = 16 * 1024 * 1024
MAX_RESTARTS = 4
#: Timed outputs per round (elements) up to which every output is saved, not a sample.
SAVE_ALL_ELEMENTS = 16 * 1024 * 1024


class TimingPlan(BaseModel):
    shape: list[int]
    dtype: str
    iters: int
    """Timed calls per side, split over the rounds."""
    warmup: int
    rounds: int
    check_per_round: int = 4
    """Timed calls per round whose outputs are checked against the reference."""


class RunPlan(BaseModel):
    """Everything the runner needs; built by harness/checks/run.py."""

    device: str
    reference_path: Path
    package_parent: Path
    package: str
    api: str
    ext_namespace: str
    replaced_ops: list[str] = Field(default_factory=list)
    calls: list[CallSpec]
    tolerances: dict[str, tuple[float, float]]
    seed: int
    """The secret base seed; every call's seed derives from it (sandbox.programs.child_common.seed_for)."""
    workdir: Path
    sandbox: str = "auto"
    timeout_s: float = 300.0
    memory_mb: int = 8192
    """RLIMIT_AS for CPU children; 0 (no limit) on CUDA, where contexts reserve huge ranges."""
    timing: TimingPlan | None = None


def new_seed() -> int:
    """A secret seed from os.urandom: the candidate cannot have seen its inputs."""
    return secrets.randbits(63)


@dataclass
class ChildRun:
    messages: list[dict]
    exec: ExecResult

    def first(self, kind: str) -> dict | None:
        return next((m for m in self.messages if m.get("kind") == kind), None)


class _PipeReader(threading.Thread):
    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.data, self.total = fd, bytearray(), 0

    def run(self) -> None:
        while chunk := os.read(self.fd, 65536):
            self.total += len(chunk)
            if len(self.data) < MAX_PIPE_BYTES:
                self.data += chunk


def run_child(module: str, spec: ChildSpec, workdir: Path, *, plan: RunPlan, wall_s: float) -> ChildRun:
    """Start `python -m module spec.json` in `workdir` through sandbox/ and collect its JSON lines."""
    workdir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    spec = spec.model_copy(update={"pipe_fd": write_fd, "out_dir": "."})
    (workdir / "spec.json").write_text(spec.model_dump_json())
    reader = _PipeReader(read_fd)
    reader.start()
    limits = Limits(wall_s=wall_s, cpu_s=int(wall_s * 4) + 60,
                    memory_mb=plan.memory_mb if plan.device == "cpu" else 0, file_mb=4096, nproc=1024)
    programs = programs_root()
    ro = tuple({programs, Path(sys.prefix), Path(plan.reference_path).parent, plan.package_parent})
    try:
        result = run_sandboxed([sys.executable, "-m", module, "spec.json"], cwd=workdir, limits=limits,
                               backend=plan.sandbox, env_extra={"PYTHONPATH": str(programs)},
                               ro_paths=ro, gpu=plan.device == "cuda", pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
        reader.join(timeout=30)
        os.close(read_fd)
    messages = []
    for line in bytes(reader.data).decode("utf-8", errors="replace").splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict):
            messages.append(msg)
    (workdir / "child.log").write_text(f"rc={result.returncode} timed_out={result.timed_out} "
                                       f"wall_s={result.wall_s:.2f}\n--- stdout\n{result.stdout}\n"
                                       f"--- stderr\n{result.stderr}\n")
    return ChildRun(messages=messages, exec=result)


def death_reason(res: ExecResult) -> str:
    """Why a child stopped early, in words."""
    tail = res.stderr[-4000:]
    if res.timed_out:
        return f"timed out: no result within {res.wall_s:.0f} s (hang?), process group killed"
    if "MemoryError" in tail or "can't allocate memory" in tail or "std::bad_alloc" in tail:
        return "out of memory (memory limit reached)"
    sig = res.signal_name
    if sig is None and res.returncode is not None and 128 < res.returncode <= 128 + 64:
        # A wrapper (bwrap, a container init) reports a signal death as 128 + signal.
        try:
            sig = signal.Signals(res.returncode - 128).name
        except ValueError:
            sig = None
    if sig == "SIGKILL":
        return "killed by SIGKILL (out of memory?)"
    if sig:
        return f"crashed with {sig}"
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "")
    return f"exited with code {res.returncode}" + (f": {last.strip()[:200]}" if last else "")


@dataclass
class CandidateCalls:
    records: dict[int, dict] = field(default_factory=dict)
    """call id -> the child's record, or an error record written by the parent."""
    fatal: str | None = None
    patched: list[str] = field(default_factory=list)
    workdirs: dict[int, Path] = field(default_factory=dict)
    """call id -> the workdir holding call_<id>.pt."""
    backend: str = ""
    """The sandbox backend the candidate child ran under."""


def run_candidate_calls(plan: RunPlan) -> CandidateCalls:
    """Correctness calls in the candidate child; restart after a crash, hang or OOM."""
    got = CandidateCalls()
    remaining = list(plan.calls)
    attempt = 0
    while remaining and attempt <= MAX_RESTARTS:
        workdir = plan.workdir / f"candidate_{attempt}"
        spec = ChildSpec(mode="correctness", device=plan.device, reference_path=str(plan.reference_path),
                         out_dir=".", pipe_fd=-1, package_parent=str(plan.package_parent),
                         package=plan.package, api=plan.api, ext_namespace=plan.ext_namespace,
                         calls=remaining)
        child = run_child("sandbox.programs.runner_child", spec, workdir, plan=plan, wall_s=plan.timeout_s)
        got.backend = child.exec.backend
        for msg in child.messages:
            if msg.get("kind") == "call" and isinstance(msg.get("id"), int):
                got.records[msg["id"]] = msg
                got.workdirs[msg["id"]] = workdir
            elif msg.get("kind") in ("loaded", "done"):
                got.patched = sorted(set(got.patched) | set(msg.get("patched") or []))
        if (fatal := child.first("fatal")) is not None:
            got.fatal = str(fatal.get("error", "cannot load the candidate"))
            return got
        if child.first("loaded") is None:
            got.fatal = f"the candidate child failed before loading the package: {death_reason(child.exec)}"
            return got
        if child.first("done") is not None:
            return got
        # The child died on the first call without a record: that call is the error.
        pending = [c for c in remaining if c.id not in got.records]
        if not pending:
            return got
        culprit = pending[0]
        got.records[culprit.id] = {"kind": "call", "id": culprit.id, "status": "error",
                                   "error": death_reason(child.exec), "died": True}
        remaining = pending[1:]
        attempt += 1
    for call in remaining:
        got.records.setdefault(call.id, {"kind": "call", "id": call.id, "status": "error",
                                         "error": "not run: too many crashed children"})
    return got


def run_reference_outputs(plan: RunPlan, calls: list[CallSpec], name: str) -> dict[int, Path]:
    """Reference outputs + pristine inputs for `calls`, computed after the candidate ran."""
    workdir = plan.workdir / name
    spec = ChildSpec(mode="outputs", device=plan.device, reference_path=str(plan.reference_path),
                     out_dir=".", pipe_fd=-1, calls=calls)
    child = run_child("sandbox.programs.reference_child", spec, workdir, plan=plan, wall_s=plan.timeout_s)
    files = {m["id"]: workdir / f"ref_{m['id']}.pt" for m in child.messages
             if m.get("kind") == "call" and isinstance(m.get("id"), int)}
    if child.first("done") is None:
        raise RuntimeError(f"reference child failed: {death_reason(child.exec)}; see {workdir / 'child.log'}")
    return files


def load_tensors(path: Path) -> dict:
    """Children's files are data only: weights_only refuses anything but tensors and plain values."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------- timing


class SideTiming(BaseModel):
    times_ns: list[int] = Field(default_factory=list)
    round_medians_ns: list[float] = Field(default_factory=list)

    @property
    def median_ns(self) -> float:
        return float(statistics.median(self.times_ns))

    def spread(self) -> dict[str, float]:
        t = sorted(self.times_ns)
        q1, q3 = _quantile(t, 0.25), _quantile(t, 0.75)
        med = self.median_ns
        rounds = self.round_medians_ns
        return {"median_ns": med, "min_ns": float(t[0]), "iqr_rel": (q3 - q1) / med if med else 0.0,
                "round_spread_rel": (max(rounds) - min(rounds)) / med if med and len(rounds) > 1 else 0.0,
                "n": len(t)}


def _quantile(sorted_values: list[int], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class TimingOutcome:
    candidate: SideTiming
    reference: SideTiming
    checked: list[tuple[CallSpec, Path, int]]
    """(call spec with the timed call's seed, candidate file, index in that file)."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return self.reference.median_ns / self.candidate.median_ns


def run_timing(plan: RunPlan) -> TimingOutcome:
    """Alternate candidate and reference timing children; check sampled timed outputs."""
    assert plan.timing is not None
    tp = plan.timing
    per_round = max(1, math.ceil(tp.iters / tp.rounds))
    cand, ref = SideTiming(), SideTiming()
    checked: list[tuple[CallSpec, Path, int]] = []
    problems: list[tuple[str, str]] = []
    patched: set[str] = set()
    rng = secrets.SystemRandom()
    for r in range(tp.rounds):
        base = 1_000_000 * (r + 1)  # seed indices apart from the correctness calls
        seeds = [seed_for(plan.seed, base + i) for i in range(tp.warmup + per_round)]
        # Small enough: the child saves every timed output and the parent picks which to check
        # afterwards, so the child cannot tell a checked call from an unchecked one.
        if per_round * math.prod(tp.shape) <= SAVE_ALL_ELEMENTS:
            save = list(range(per_round))
        else:
            save = sorted(rng.sample(range(per_round), min(tp.check_per_round, per_round)))
        check = sorted(rng.sample(save, min(tp.check_per_round, len(save))))
        timing = TimingSpec(shape=tp.shape, dtype=tp.dtype, seeds=seeds, warmup=tp.warmup, save=save)
        cand_spec = ChildSpec(mode="timing", device=plan.device, reference_path=str(plan.reference_path),
                              out_dir=".", pipe_fd=-1, package_parent=str(plan.package_parent),
                              package=plan.package, api=plan.api, ext_namespace=plan.ext_namespace,
                              timing=timing)
        wd = plan.workdir / f"timing_candidate_{r}"
        child = run_child("sandbox.programs.runner_child", cand_spec, wd, plan=plan, wall_s=plan.timeout_s)
        for msg in child.messages:
            if msg.get("kind") in ("loaded", "done"):
                patched |= set(msg.get("patched") or [])
        got = child.first("timing")
        if got is None or child.first("done") is None:
            fatal = child.first("fatal")
            why = fatal["error"] if fatal else death_reason(child.exec)
            problems.append(("crash", f"timing round {r + 1}: {why}"))
            break
        times = [int(t) for t in got.get("times_ns", [])]
        if len(times) != per_round or min(times, default=0) <= 0:
            problems.append(("crash", f"timing round {r + 1}: the child reported {len(times)} timings, "
                                      f"expected {per_round} positive ones"))
            break
        if sum(times) / 1e9 > child.exec.wall_s:
            problems.append(("monkeypatch", f"timing round {r + 1}: reported times add up to more than "
                                            f"the child's wall-clock time (timer tampered)"))
        cand.times_ns += times
        cand.round_medians_ns.append(float(statistics.median(times)))
        for j in check:
            checked.append((CallSpec(id=base + tp.warmup + j, shape=tp.shape, dtype=tp.dtype,
                                     seed=seeds[tp.warmup + j]), wd / "timed_outputs.pt", j))
        ref_spec = ChildSpec(mode="timing", device=plan.device, reference_path=str(plan.reference_path),
                             out_dir=".", pipe_fd=-1, timing=timing)
        rchild = run_child("sandbox.programs.reference_child", ref_spec, plan.workdir / f"timing_reference_{r}",
                           plan=plan, wall_s=plan.timeout_s)
        rgot = rchild.first("timing")
        if rgot is None:
            raise RuntimeError(f"reference timing child failed: {death_reason(rchild.exec)}")
        rtimes = [int(t) for t in rgot["times_ns"]]
        ref.times_ns += rtimes
        ref.round_medians_ns.append(float(statistics.median(rtimes)))
    return TimingOutcome(candidate=cand, reference=ref, checked=checked, problems=problems,
                         patched=sorted(patched))


def clean_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["CandidateCalls", "ChildRun", "RunPlan", "SideTiming", "TimingOutcome", "TimingPlan",
           "clean_workdir", "death_reason", "load_tensors", "new_seed", "run_candidate_calls",
           "run_child", "run_reference_outputs", "run_timing"]
