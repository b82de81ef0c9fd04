"""The runner, parent side: one code path for cpu and cuda (DESIGN.md "Runner and trust boundary").

  correctness:  the parent makes every call's inputs (harness/execute/inputs.py) and drives
                the candidate's child (sandbox.programs.runner_child) one request at a time
                (harness/execute/session.py): each call on inputs written when it is due,
                read by the parent from the stopped child at return; then every call again
                as a watched replay; then the outputs read once more. The reference child
                (sandbox.programs.reference_child, never imports the candidate) computes the
                reference on every layer of every call's inputs afterwards, and the parent
                compares and applies the anti-cheat rules (harness/execute/judge.py,
                harness/checks/run.py).
  timing:       harness/execute/timing.py.

A child that crashes, hangs or runs out of memory costs only the call it was on: the
parent restarts a child for the remaining calls. Trust: docs/validation.md, "Threat model".
"""

from __future__ import annotations

import io
import logging
import secrets
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel, Field

from harness.common.errors import UserError
from harness.execute import memory
from harness.execute.inputs import CallInputs, InputRing, layers_file, make_layers, write_decoy_spec
from harness.execute.session import ChildSession, LoadFailed, SessionDied, SessionEnd
from harness.inputs.reference import load_reference_module
from sandbox.exec import ExecResult
from sandbox.programs.seccomp import KILLED_FOR
from sandbox.readback import read_bytes

log = logging.getLogger(__name__)

MAX_RESTARTS = 4


class CallSpec(BaseModel):
    """One correctness call: shape, dtype and the seed of its x0 layer."""

    id: int
    shape: list[int]
    dtype: str
    seed: int


class TimingPlan(BaseModel):
    shape: list[int]
    dtype: str
    iters: int
    """Timed calls per side, split over the rounds."""
    warmup: int
    rounds: int
    check_per_round: int = 4
    """Timed calls per round whose outputs are checked when not all of them are."""
    baseline: str = "eager"
    """eager: the reference as written; compile: the reference under torch.compile (timing only;
    correctness is always judged against the eager reference)."""


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
    """The secret base seed; every input derives from it (harness/execute/inputs.py)."""
    workdir: Path
    sandbox: str = "auto"
    timeout_s: float = 300.0
    memory_mb: int = 8192
    """RLIMIT_AS for CPU children; 0 (no limit) on CUDA, where contexts reserve huge ranges."""
    timing: TimingPlan | None = None


def new_seed() -> int:
    """A secret seed from os.urandom: the candidate cannot have seen its inputs."""
    return secrets.randbits(63)


def death_reason(res: ExecResult | None) -> str:
    """Why a child stopped early, in words."""
    if res is None:
        return "the child ended (no result from the sandbox)"
    tail = res.stderr[-4000:]
    if res.timed_out:
        return f"timed out: no result within {res.wall_s:.0f} s (hang?), process group killed"
    if "MemoryError" in tail or "can't allocate memory" in tail or "std::bad_alloc" in tail:
        return "out of memory (memory limit reached)"
    sig = died_by(res)
    if sig == "SIGKILL":
        return "killed by SIGKILL (out of memory?)"
    if sig:
        return f"crashed with {sig}"
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "")
    return f"exited with code {res.returncode}" + (f": {last.strip()[:200]}" if last else "")


def died_by(res: ExecResult | None) -> str | None:
    """The signal that ended the child, by name (a wrapper's 128 + N counts too)."""
    if res is None:
        return None
    sig = res.signal_name
    if sig is None and res.returncode is not None and 128 < res.returncode <= 128 + 64:
        try:
            sig = signal.Signals(res.returncode - 128).name
        except ValueError:
            sig = None
    return sig


def processes_reason(res: ExecResult | None, leftover: list[str]) -> str | None:
    """Why the candidate counts as having started processes of its own, or None."""
    if died_by(res) == "SIGSYS":
        return (f"started processes of its own: it made a system call that starts one ({KILLED_FOR}), "
                f"which the sandbox refuses, and was killed for it (SIGSYS)")
    if leftover:
        return (f"started processes of its own: {len(leftover)} still ran in its sandbox when its last result "
                f"came in ({', '.join(leftover[:3])})")
    # The sandbox's "killed N leftover process(es)" note is no evidence here: the parent ends
    # every child itself, and the sandbox's own processes count among the killed then.
    return None


@dataclass
class Output:
    """One output of one call as the parent read it: a tensor, or why there is none."""

    tensor: torch.Tensor | None = None
    problem: tuple[str, str] | None = None
    desc: dict = field(default_factory=dict)


@dataclass
class CallRecord:
    id: int
    status: str = "error"
    error: str | None = None
    died: bool = False
    outputs: list[Output] = field(default_factory=list)
    inputs_after: list = field(default_factory=list)
    t_ns: int | None = None
    parent_ns: int | None = None
    modes_left: list[str] = field(default_factory=list)
    replay: dict | None = None
    """{"outputs": [Output], "trace": {...}} or {"error": ...}: the same call, watched."""
    changed_later: list[int] = field(default_factory=list)
    """Outputs whose memory changed after the call returned (read again after the last call)."""
    file_differs: list[int] = field(default_factory=list)
    """Outputs whose copy in the workspace's call_<id>.pt is not what the parent read."""


@dataclass
class CandidateCalls:
    records: dict[int, CallRecord] = field(default_factory=dict)
    inputs: dict[int, CallInputs] = field(default_factory=dict)
    fatal: str | None = None
    fatal_kind: str = "load"
    patched: list[str] = field(default_factory=list)
    rebound: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    processes: str | None = None
    backend: str = ""
    notes: list[str] = field(default_factory=list)
    workdirs: list[Path] = field(default_factory=list)


def child_paths(plan: RunPlan) -> tuple[Path, ...]:
    """Read-only binds a child needs besides the programs and Python: the built package and the
    reference's folder (public; the decoy spec names the reference, so it must import)."""
    return (plan.package_parent, Path(plan.reference_path).parent)


def candidate_setup(plan: RunPlan, ring: InputRing, *, correctness: bool) -> dict:
    return {"device": plan.device, "package_parent": str(plan.package_parent), "package": plan.package,
            "api": plan.api, "ext_namespace": plan.ext_namespace, "perturb": correctness, "replays": correctness,
            "keep": correctness, "filter": True, **ring.setup()}


def rebound_problem(rebound: list[str]) -> tuple[str, str] | None:
    """The finding for clock aliases the candidate's process rebound (a tripwire: it can only count against it)."""
    if not rebound:
        return None
    return ("timing", f"timing not confirmed from outside: it rebinds {', '.join(rebound[:4])}, "
                      f"aliases of the clock the child's timer reads")


def read_outputs(session: ChildSession, reply: dict) -> list[Output]:
    caught = memory.caught_signals(session.pid) if session.pid else set()
    outs = []
    for k, desc in enumerate(reply.get("outputs") or []):
        if "note" in desc:
            outs.append(Output(problem=("shape", f"output {k}: {desc['note']}"), desc=desc))
            continue
        try:
            outs.append(Output(tensor=session.read_tensor(desc), desc=desc))
        except memory.Unreadable as err:
            handler = sorted(s.name for s in (signal.SIGSEGV, signal.SIGBUS) if int(s) in caught)
            also = f"; it catches {', '.join(handler)}, so a handler of its own would fill it in when touched" \
                if handler else ""
            outs.append(Output(problem=("not_ready", f"output not ready when the call returned (output {k}): {err.why}{also}"),
                               desc=desc))
        except ValueError as err:
            outs.append(Output(problem=("shape", f"output {k}: {err}"), desc=desc))
    return outs


def _session_end(got: CandidateCalls, end: SessionEnd) -> None:
    got.violations += end.violations
    got.backend = end.result.backend if end.result else got.backend
    why = processes_reason(end.result, end.leftover)
    got.processes = got.processes or why


def _original(session: ChildSession, ring: InputRing, got: CandidateCalls, cid: int) -> CallRecord:
    rec = got.records[cid] = CallRecord(id=cid)
    ring.write(cid, got.inputs[cid].real)
    reply = session.request({"op": "call", "call": cid})
    msg = reply.msg
    rec.parent_ns, rec.t_ns = reply.parent_ns, msg.get("t_ns")
    rec.inputs_after = ring.read(cid)
    if "error" in msg:
        rec.error = str(msg["error"])
        return rec
    rec.status = "ok"
    rec.outputs = read_outputs(session, msg)
    rec.modes_left = [str(m) for m in msg.get("modes_left") or []]
    session.request({"op": "save", "call": cid})
    return rec


def _replays_and_rereads(session: ChildSession, ring: InputRing, got: CandidateCalls, done: list[int],
                         workdir: Path) -> None:
    for cid in done:
        rec = got.records[cid]
        ring.write(cid, got.inputs[cid].real)
        reply = session.request({"op": "replay", "call": cid})
        if "error" in reply.msg:
            rec.replay = {"error": str(reply.msg["error"]), "trace": {}}
        else:
            rec.replay = {"outputs": read_outputs(session, reply.msg), "trace": reply.msg.get("trace") or {}}
    status(session, got)
    ring_lo = int(session.loaded.get("ring") or 0)
    for cid in done:
        rec = got.records[cid]
        saved = _saved_outputs(workdir, cid)
        for k, out in enumerate(rec.outputs):
            if out.tensor is None:
                continue  # nothing read at return: nothing to compare with
            ptr = int(out.desc.get("ptr", 0))
            if not (ring_lo <= ptr < ring_lo + ring.size):  # an input's slot is rewritten by the parent
                try:
                    now = session.read_tensor(out.desc)
                    if not _same_bits(now, out.tensor):
                        rec.changed_later.append(k)
                except (memory.Unreadable, ValueError):
                    rec.changed_later.append(k)
            if saved is not None and (k >= len(saved) or not isinstance(saved[k], torch.Tensor)
                                      or not _same_bits(saved[k], out.tensor)):
                rec.file_differs.append(k)


def status(session: ChildSession, got) -> None:
    """Ask for the in-process tripwires once more, at the end (they were asked at load too)."""
    msg = session.request({"op": "status"}).msg
    got.patched = sorted(set(got.patched) | set(msg.get("patched") or []))
    got.rebound = sorted(set(got.rebound) | set(msg.get("rebound") or []))


def _saved_outputs(workdir: Path, cid: int) -> list | None:
    try:
        data = torch.load(io.BytesIO(read_bytes(workdir, f"call_{cid}.pt", max_bytes=1 << 31)),
                          map_location="cpu", weights_only=True)
        return list(data["outputs"])
    except Exception:  # noqa: BLE001 - no file, or not one the runner wrote: nothing to compare
        return None


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and \
        torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def run_candidate_calls(plan: RunPlan) -> CandidateCalls:
    """Correctness calls in the candidate's child; restart after a crash, hang or OOM."""
    ref = load_reference_module(plan.reference_path)
    got = CandidateCalls()
    for call in plan.calls:
        got.inputs[call.id] = make_layers(ref, call.shape, call.dtype, plan.seed, call.id)
    ring = InputRing.for_calls([got.inputs[c.id].real for c in plan.calls])
    try:
        for call in plan.calls[:ring.staged_upto]:
            ring.write(call.id, got.inputs[call.id].layers["x1"])  # decoys until each call is due
        remaining = [c.id for c in plan.calls]
        attempt = 0
        while remaining and attempt <= MAX_RESTARTS:
            remaining = _one_child(plan, ring, got, remaining, attempt)
            if got.fatal:
                return got
            attempt += 1
        for cid in remaining:
            got.records.setdefault(cid, CallRecord(id=cid, error="not run: too many crashed children"))
        return got
    finally:
        ring.close()


def _one_child(plan: RunPlan, ring: InputRing, got: CandidateCalls, remaining: list[int], attempt: int) -> list[int]:
    """Run `remaining` in one child; return the calls still to run (after a crash)."""
    workdir = plan.workdir / f"candidate_{attempt}"
    got.workdirs.append(workdir)
    write_decoy_spec(workdir, mode="correctness", device=plan.device, reference_path=plan.reference_path,
                     package_parent=plan.package_parent, package=plan.package, api=plan.api,
                     ext_namespace=plan.ext_namespace, pipe_fd=4,
                     calls=[{"id": c.id, "shape": c.shape, "dtype": c.dtype, "seed": c.seed} for c in plan.calls])
    session = ChildSession("sandbox.programs.runner_child", workdir, candidate_setup(plan, ring, correctness=True),
                           plan.device, plan.sandbox, plan.timeout_s, plan.memory_mb, child_paths(plan),
                           ring_fd=ring.fd)
    try:
        loaded = session.start()
    except LoadFailed as err:
        end = session.close()
        got.fatal = str(err)
        _session_end(got, end)
        return []
    except SessionDied as err:
        end = session.close()
        _session_end(got, end)
        if got.processes:
            got.fatal, got.fatal_kind = got.processes, "processes"
        else:
            got.fatal = f"the candidate child failed before loading the package: {death_reason(err.result)}"
        return []
    got.notes = [str(n) for n in loaded.get("notes") or []]
    got.patched = sorted(set(got.patched) | set(loaded.get("patched") or []))
    got.rebound = sorted(set(got.rebound) | set(loaded.get("rebound") or []))
    done: list[int] = []
    rest: list[int] = []
    try:
        for i, cid in enumerate(remaining):
            try:
                _original(session, ring, got, cid)
            except SessionDied as err:
                rec = got.records.setdefault(cid, CallRecord(id=cid))
                rec.status, rec.died, rec.error = "error", True, death_reason(err.result)
                rest = remaining[i + 1:]
                break
            done.append(cid)
        else:
            try:
                _replays_and_rereads(session, ring, got, done, workdir)
            except SessionDied as err:
                got.notes.append(f"replays stopped: the child ended ({death_reason(err.result)})")
    finally:
        _session_end(got, session.close())
    return rest


def run_reference_outputs(plan: RunPlan, inputs: dict[int, CallInputs], name: str) -> dict[int, dict]:
    """The reference on every layer of each call's inputs, computed after the candidate ran:
    {id: {"x0": outs, "x1": outs, "x2": outs}}."""
    workdir = plan.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    session = ChildSession("sandbox.programs.reference_child", workdir,
                           {"device": plan.device, "reference_path": str(plan.reference_path), "ring_fd": -1,
                            "ring_size": 0, "calls": []},
                           plan.device, plan.sandbox, plan.timeout_s, plan.memory_mb, (Path(plan.reference_path).parent,))
    out: dict[int, dict] = {}
    try:
        session.start()
        for cid, layers in inputs.items():
            src = layers_file(workdir / f"in_{cid}.pt", layers)
            reply = session.request({"op": "outputs", "file": str(src), "out": str(workdir / f"ref_{cid}.pt")})
            if reply.msg.get("reference_failed"):  # the user's reference, not kernelgrade, failed
                raise UserError(f"reference {plan.reference_path}: {reply.msg.get('error')}")
            if reply.msg.get("kind") != "outputs":
                raise RuntimeError(f"reference child: {reply.msg.get('error')}")
            out[cid] = load_tensors(workdir / f"ref_{cid}.pt")
    except (SessionDied, LoadFailed) as err:
        raise RuntimeError(f"reference child failed: {err}; see {workdir}") from err
    finally:
        session.close()
    return out


def load_tensors(path: Path) -> dict:
    """Children's files are data only: weights_only refuses anything but tensors and plain values."""
    return torch.load(path, map_location="cpu", weights_only=True)


def clean_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["CallRecord", "CallSpec", "CandidateCalls", "Output", "RunPlan", "TimingPlan", "candidate_setup", "status",
           "child_paths", "clean_workdir", "death_reason", "died_by", "load_tensors", "new_seed",
           "processes_reason", "read_outputs", "run_candidate_calls", "run_reference_outputs"]
