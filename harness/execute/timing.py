"""Timing, from outside the candidate's process (docs/validation.md, "Threat model").

One candidate child and one reference child, each started once, take turns in rounds:
a few warm-up calls, then the timed ones. Every call gets fresh inputs, written into its
slot by the parent when it is due; the parent flushes the caches itself
(harness/execute/flush.py) and times each call on its own clock, from sending the request
to seeing the child stopped after its reply (harness/execute/session.py). The child's own
clock, inside the call, is finer but is the candidate's to rebind; so:

  * the reference's two clocks give the harness's overhead around a call (the same request
    loop runs in both children);
  * a candidate whose own clock leaves out more than that overhead, beyond a tolerance, is
    a `timing` finding: "timing not confirmed from outside";
  * the candidate's time per call is never less than its outside time minus the reference's
    overhead (a high quantile of it): a clock that runs slow cannot buy a speedup.

Outputs of timed calls are read by the parent at return like correctness outputs, and the
sampled ones are compared with the reference on every input layer (harness/checks/speedup.py).

Spread among the timed calls come a few *blocked* ones (sandbox/programs/serve.py,
ComputeBlock): in the candidate's child PyTorch's compute ops raise; the reference's child runs
its own eager function on the same inputs without the mode and under it passing ops through,
which measures what the mode itself costs. A candidate whose blocked calls fail, or whose
fastest blocked call takes longer than its usual one beyond that cost and the tolerance, got
its speed from PyTorch whenever it was not watched: "computes with PyTorch when it is not
watched".
"""

from __future__ import annotations

import math
import secrets
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from harness.execute.flush import ParentFlush
from harness.execute.inputs import CallInputs, InputRing, layers_file, make_layers, write_decoy_spec
from harness.execute.runner import (Output, RunPlan, candidate_setup, child_paths, death_reason, load_tensors,
                                    processes_reason, read_outputs, rebound_problem)
from harness.execute.session import ChildSession, LoadFailed, SessionDied
from harness.inputs.reference import load_reference_module
from sandbox.programs.child_common import seed_for

#: Timed outputs per round (elements) up to which every output is checked, not a sample.
SAVE_ALL_ELEMENTS = 16 * 1024 * 1024
#: Seed indices of timed calls start here, apart from the correctness calls'.
TIMING_INDEX = 1_000_000
#: The clocks may disagree by the reference's overhead plus the larger of these.
ABS_SLACK_NS = 60_000
REL_SLACK = 0.3
#: The candidate's time per call is at least its outside time minus this quantile of the
#: reference's overhead.
FLOOR_QUANTILE = 0.9
#: Blocked calls (PyTorch's compute unavailable) after the timed ones, on each side.
BLOCKED_CALLS = 6


class SideTiming(BaseModel):
    times_ns: list[int] = Field(default_factory=list)
    """The figure per timed call (the candidate's: in-process time, floored from outside)."""
    round_medians_ns: list[float] = Field(default_factory=list)
    parent_ns: list[int] = Field(default_factory=list)
    """The parent's clock per timed call: request sent to child stopped again."""
    inproc_ns: list[int] = Field(default_factory=list)
    """The child's own clock per timed call."""

    @property
    def median_ns(self) -> float:
        return float(statistics.median(self.times_ns))

    def spread(self) -> dict[str, float]:
        t = sorted(self.times_ns)
        q1, q3 = quantile(t, 0.25), quantile(t, 0.75)
        med = self.median_ns
        rounds = self.round_medians_ns
        return {"median_ns": med, "min_ns": float(t[0]), "iqr_rel": (q3 - q1) / med if med else 0.0,
                "round_spread_rel": (max(rounds) - min(rounds)) / med if med and len(rounds) > 1 else 0.0,
                "n": len(t)}


def quantile(sorted_values: list[int] | list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class CrossCheck:
    problem: str | None
    floor_ns: float
    """The candidate's time for call k is at least its outside time less the reference's
    overhead on call k, less this (twice the overhead's jitter)."""
    metrics: dict


def cross_check(cand_parent: list[int], cand_inproc: list[int], ref_parent: list[int],
                ref_inproc: list[int]) -> CrossCheck:
    """Do the candidate's own times agree with the parent's clock? Pure, on numbers.

    Call k of the candidate and call k of the reference run back to back, so they share the
    machine's state. The parent's window around a call holds the call plus the harness's own
    work (the request, the reply, the child stopping): the same code in both children, and
    the reference's two clocks measure it. So for each k, the candidate's gap (outside minus
    inside) less the reference's overhead is about zero for an honest candidate, and that
    much of the call is missing from the candidate's own clock otherwise. The tolerance
    grows with the reference's jitter (how much its overhead moves from one call to the
    next: a busy machine) and with the spread of the paired differences themselves, so a
    loaded machine's noise in either child's overhead is not read as a missing clock. A
    candidate that widens that spread on purpose (sleeping at random) only lengthens its own
    outside time, which bounds its figure from below: the check can miss it, the figure cannot."""
    overhead = [p - t for p, t in zip(ref_parent, ref_inproc)]
    missing = sorted((pc - tc) - o for pc, tc, o in zip(cand_parent, cand_inproc, overhead))
    steps = sorted(abs(a - b) for a, b in zip(overhead, overhead[1:])) or [0]
    jitter = quantile(steps, 0.5)
    cand_outside, cand_inside = statistics.median(cand_parent), statistics.median(cand_inproc)
    call_outside = statistics.median(pc - o for pc, o in zip(cand_parent, overhead))
    excess = quantile(missing, 0.5)
    spread = quantile(sorted(abs(m - excess) for m in missing), 0.5)  # median absolute deviation
    slack = ABS_SLACK_NS + 3 * jitter + 3 * spread + REL_SLACK * max(0.0, call_outside)
    metrics = {"reference_overhead_us": statistics.median(overhead) / 1e3, "overhead_jitter_us": jitter / 1e3,
               "clock_gap_spread_us": spread / 1e3,
               "clock_excess_us": excess / 1e3, "clock_slack_us": slack / 1e3,
               "candidate_outside_us": call_outside / 1e3, "candidate_inside_us": cand_inside / 1e3}
    problem = None
    if excess > slack:
        problem = (f"timing not confirmed from outside: the child's own clock says {cand_inside / 1e3:.1f} us per "
                   f"call, the harness saw {call_outside / 1e3:.1f} us (its clock around each call, less its own "
                   f"overhead measured on the reference's calls in between): {excess / 1e3:.1f} us of each call "
                   f"are missing from the child's clock, beyond the tolerance of {slack / 1e3:.1f} us")
    elif cand_inside > cand_outside + ABS_SLACK_NS:
        problem = (f"timing not confirmed from outside: the child's own clock says {cand_inside / 1e3:.1f} us per "
                   f"call, more than the {cand_outside / 1e3:.1f} us that passed outside")
    return CrossCheck(problem=problem, floor_ns=2 * jitter, metrics=metrics)


@dataclass
class TimingOutcome:
    candidate: SideTiming
    reference: SideTiming
    checked: list[tuple[int, list[Output]]] = field(default_factory=list)
    """(call index, its outputs as the parent read them at return)."""
    reference_outputs: dict[int, dict] = field(default_factory=dict)
    inputs: dict[int, CallInputs] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    blocked: SideTiming = field(default_factory=SideTiming)
    """The candidate's blocked calls (parent's clock), and the reference's below."""
    blocked_reference: SideTiming = field(default_factory=SideTiming)
    blocked_plain: SideTiming = field(default_factory=SideTiming)
    """The reference's own (eager) function on the blocked calls' inputs, without the mode and
    with it (blocked_reference): the difference is what the mode costs."""

    @property
    def speedup(self) -> float:
        return self.reference.median_ns / self.candidate.median_ns


def _start(session: ChildSession, problems: list, side: str) -> bool:
    try:
        session.start()
        return True
    except LoadFailed as err:
        problems.append(("load", f"{side} timing child: {err}"))
    except SessionDied as err:
        why = processes_reason(err.result, [])
        problems.append(("processes", why) if why else ("crash", f"{side} timing child: {death_reason(err.result)}"))
    return False


def run_timing(plan: RunPlan) -> TimingOutcome:
    """Alternate the candidate's and the reference's calls; read the sampled outputs."""
    assert plan.timing is not None
    tp = plan.timing
    ref = load_reference_module(plan.reference_path)
    rounds = max(1, tp.rounds)
    per_round = max(1, math.ceil(tp.iters / rounds))
    total = tp.warmup + rounds * per_round
    first = make_layers(ref, tp.shape, tp.dtype, plan.seed, TIMING_INDEX)
    ring_c = InputRing.for_calls([first.real] * (total + BLOCKED_CALLS))
    ring_r = InputRing.for_calls([first.real] * (total + BLOCKED_CALLS))
    rng = secrets.SystemRandom()
    every = per_round * math.prod(tp.shape) <= SAVE_ALL_ELEMENTS
    checked_idx: set[int] = set()
    for r in range(rounds):
        timed = [tp.warmup + r * per_round + j for j in range(per_round)]
        checked_idx |= set(timed if every else rng.sample(timed, min(tp.check_per_round, per_round)))
    out = TimingOutcome(candidate=SideTiming(), reference=SideTiming())
    wd = plan.workdir / "timing_candidate"
    write_decoy_spec(wd, mode="timing", device=plan.device, reference_path=plan.reference_path,
                     package_parent=plan.package_parent, package=plan.package, api=plan.api,
                     ext_namespace=plan.ext_namespace, pipe_fd=4, calls=[],
                     timing={"shape": tp.shape, "dtype": tp.dtype, "warmup": tp.warmup,
                             "seeds": [seed_for(plan.seed, TIMING_INDEX + k) for k in range(total)], "save": []})
    cand = ChildSession("sandbox.programs.runner_child", wd, candidate_setup(plan, ring_c, correctness=False),
                        plan.device, plan.sandbox, plan.timeout_s, plan.memory_mb, child_paths(plan), ring_fd=ring_c.fd)
    refs = ChildSession("sandbox.programs.reference_child", plan.workdir / "timing_reference",
                        {"device": plan.device, "reference_path": str(plan.reference_path),
                         "compile": tp.baseline == "compile", **ring_r.setup()},
                        plan.device, plan.sandbox, plan.timeout_s, plan.memory_mb, (Path(plan.reference_path).parent,),
                        ring_fd=ring_r.fd)
    flush = ParentFlush(plan.device)
    try:
        for k in range(min(ring_c.staged_upto, total + BLOCKED_CALLS)):
            ring_c.write(k, make_layers(ref, tp.shape, tp.dtype, plan.seed, TIMING_INDEX + k).layers["x1"])
        if not (_start(cand, out.problems, "candidate") and _start(refs, out.problems, "reference")):
            return out
        _calls(plan, ref, cand, refs, ring_c, ring_r, flush, out, checked_idx, total)
        _tripwires(cand, out)
        if out.checked:
            out.reference_outputs = _reference_outputs(refs, out, plan.workdir / "timing_reference")
    finally:
        ends = [cand.close(), refs.close()]
        ring_c.close()
        ring_r.close()
    end = ends[0]
    out.problems = [("forged", f"record not confirmed by the trusted side: {v}") for v in end.violations] + out.problems
    if why := processes_reason(end.result, end.leftover):
        out.problems.insert(0, ("processes", why))
    if out.candidate.inproc_ns and len(out.candidate.inproc_ns) == len(out.reference.inproc_ns):
        _own_work(out, _figures(out, rounds))
    out.metrics["flush"] = "parent" if flush.in_parent else "child (no device in the parent)"
    return out


def _one(session: ChildSession, ring: InputRing, flush: ParentFlush, k: int, inputs: CallInputs, side: str,
         out: TimingOutcome, *, blocked: bool = False, eager: bool = False) -> dict | None:
    ring.write(k, inputs.real)
    try:
        reply = session.request({"op": "call", "call": k, "flush": not flush(k), "blocked": blocked, "eager": eager})
    except SessionDied as err:
        if side == "reference":
            raise RuntimeError(f"reference timing child failed: {death_reason(err.result)}") from err
        out.problems.append(("crash", f"timed call {k}: {death_reason(err.result)}"))
        return None
    if "error" in reply.msg:
        if side == "reference":
            raise RuntimeError(f"reference timing call failed: {reply.msg['error']}")
        out.problems.append(("crash", f"timed call {k}: {reply.msg['error']}"))
        return None
    return {"msg": reply.msg, "parent_ns": reply.parent_ns}


def _calls(plan: RunPlan, ref, cand: ChildSession, refs: ChildSession, ring_c: InputRing, ring_r: InputRing,
           flush: ParentFlush, out: TimingOutcome, checked_idx: set[int], total: int) -> None:
    """Call k of the candidate, then call k of the reference, on the same inputs, k = 0, 1, ...
    A blocked pair (module docstring) follows a few of the timed calls, spread over them, so
    each is compared with the ordinary calls made just before it, on the same machine state."""
    tp = plan.timing
    timed = list(range(tp.warmup, total))
    step = max(1, len(timed) // BLOCKED_CALLS)
    blocked_after = {k: j for j, k in enumerate(timed[step - 1::step][:BLOCKED_CALLS])}
    for k in range(total):
        inputs = make_layers(ref, tp.shape, tp.dtype, plan.seed, TIMING_INDEX + k)
        got = _one(cand, ring_c, flush, k, inputs, "candidate", out)
        if got is None:
            return
        if k in checked_idx:
            out.checked.append((k, read_outputs(cand, got["msg"])))
            out.inputs[k] = inputs
        mine = _one(refs, ring_r, flush, k, inputs, "reference", out)
        if k < tp.warmup:
            continue
        for sink, rep in ((out.candidate, got), (out.reference, mine)):
            sink.parent_ns.append(int(rep["parent_ns"]))
            sink.inproc_ns.append(int(rep["msg"].get("t_ns") or 0))
        if k in blocked_after and not _blocked_pair(plan, ref, cand, refs, ring_c, ring_r, flush, out,
                                                    total + blocked_after[k]):
            return


def _blocked_pair(plan: RunPlan, ref, cand: ChildSession, refs: ChildSession, ring_c: InputRing,
                  ring_r: InputRing, flush: ParentFlush, out: TimingOutcome, k: int) -> bool:
    """Call k with PyTorch's compute unavailable to the candidate, then the reference's under
    the same mode passing everything through. False when the candidate's call failed."""
    tp = plan.timing
    inputs = make_layers(ref, tp.shape, tp.dtype, plan.seed, TIMING_INDEX + k)
    ring_c.write(k, inputs.real)
    try:
        reply = cand.request({"op": "call", "call": k, "flush": not flush(k), "blocked": True})
    except SessionDied as err:
        out.problems.append(("crash", f"timed call {k} (PyTorch's compute unavailable): {death_reason(err.result)}"))
        return False
    if "error" in reply.msg:
        out.problems.append(("unwatched", f"computes with PyTorch when it is not watched: its timed calls ran, "
                                          f"but with PyTorch's compute unavailable timed call {k} failed "
                                          f"({str(reply.msg['error'])[:300]})"))
        return False
    out.checked.append((k, read_outputs(cand, reply.msg)))  # right, too, not merely quick
    out.inputs[k] = inputs
    # The reference's own function, eager even against a torch.compile baseline (a compiled
    # function under a dispatch mode recompiles), without the mode and with it.
    plain = _one(refs, ring_r, flush, k, inputs, "reference", out, eager=True)
    mine = _one(refs, ring_r, flush, k, inputs, "reference", out, blocked=True, eager=True)
    for sink, rep in ((out.blocked, {"msg": reply.msg, "parent_ns": reply.parent_ns}), (out.blocked_plain, plain),
                      (out.blocked_reference, mine)):
        sink.parent_ns.append(int(rep["parent_ns"]))
        sink.inproc_ns.append(int(rep["msg"].get("t_ns") or 0))
    return True


def _tripwires(cand: ChildSession, out: TimingOutcome) -> None:
    """The candidate child's own report, at load and at the end: it can only count against it."""
    try:
        last = cand.request({"op": "status"}).msg
    except SessionDied:
        last = {}
    out.patched = sorted(set(cand.loaded.get("patched") or []) | set(last.get("patched") or []))
    problem = rebound_problem(sorted(set(cand.loaded.get("rebound") or []) | set(last.get("rebound") or [])))
    if problem:
        out.problems.append(problem)


def _reference_outputs(refs: ChildSession, out: TimingOutcome, workdir: Path) -> dict[int, dict]:
    got = {}
    for k, _ in out.checked:
        src = layers_file(workdir / f"in_{k}.pt", out.inputs[k])
        reply = refs.request({"op": "outputs", "file": str(src), "out": str(workdir / f"ref_{k}.pt")})
        if reply.msg.get("kind") != "outputs":
            raise RuntimeError(f"reference child: {reply.msg.get('error')}")
        got[k] = load_tensors(workdir / f"ref_{k}.pt")
    return got


def _figures(out: TimingOutcome, rounds: int) -> float:
    """The figures per call; returns the floor's allowance (twice the overhead's jitter)."""
    c, r = out.candidate, out.reference
    check = cross_check(c.parent_ns, c.inproc_ns, r.parent_ns, r.inproc_ns)
    out.metrics.update(check.metrics)
    if check.problem:
        out.problems.insert(0, ("timing", check.problem))
    c.times_ns = [max(t, int(pc - (pr - tr) - check.floor_ns))
                  for pc, t, pr, tr in zip(c.parent_ns, c.inproc_ns, r.parent_ns, r.inproc_ns)]
    r.times_ns = list(r.inproc_ns)
    n = max(1, len(c.times_ns) // rounds)
    for side in (c, r):
        side.round_medians_ns = [float(statistics.median(side.times_ns[i:i + n]))
                                 for i in range(0, len(side.times_ns), n)]
    return check.floor_ns


def own_work_problem(ordinary: list[int], blocked: list[int], ref_plain: list[int],
                     ref_blocked: list[int]) -> tuple[str | None, dict]:
    """Is the candidate slower with PyTorch's compute unavailable than without, beyond what the
    blocking mode itself costs and the tolerance? Pure, on the figures per call (the candidate's
    own clock, floored by the parent's as in the speedup figure).

    A busy machine only ever adds time to a call, so the blocked calls are read by their
    fastest: an honest candidate's best blocked call is about its usual call plus the mode's
    cost, while one that needs PyTorch to be fast is slow on every blocked call, the fastest
    too. Its usual call is its median (the speedup's figure). The mode's cost is the
    reference's fastest blocked call less its fastest plain one (its own eager function on the
    same inputs, without the mode): like for like, so noise in a median does not pass for it."""
    cand, cand_b = statistics.median(ordinary), min(blocked)
    mode_cost = max(0.0, min(ref_blocked) - min(ref_plain))
    excess = cand_b - mode_cost - cand
    slack = ABS_SLACK_NS + REL_SLACK * cand
    metrics = {"blocked_calls": len(blocked), "blocked_candidate_us": cand_b / 1e3,
               "blocked_mode_cost_us": mode_cost / 1e3, "blocked_excess_us": excess / 1e3,
               "blocked_slack_us": slack / 1e3}
    if excess <= slack:
        return None, metrics
    return (f"computes with PyTorch when it is not watched: {cand_b / 1e3:.1f} us for its fastest call with "
            f"PyTorch's compute unavailable, {cand / 1e3:.1f} us its median otherwise ({excess / 1e3:.1f} us "
            f"more, beyond the {mode_cost / 1e3:.1f} us the blocking itself costs and the tolerance of "
            f"{slack / 1e3:.1f} us): speed that exists only while PyTorch can compute is not its own"), metrics


def _own_work(out: TimingOutcome, floor_ns: float) -> None:
    """Compare the blocked calls with the ordinary ones (module docstring). A blocked call's
    figure is floored from outside like an ordinary one, less the reference's median overhead
    over all its calls rather than the overhead of its one paired call: a scheduling delay in
    that call would otherwise lower the floor (and take the candidate's own clock on trust)
    or raise an honest figure."""
    b, rb, rp, r = out.blocked, out.blocked_reference, out.blocked_plain, out.reference
    paired = len(b.parent_ns) == len(rb.parent_ns) == len(rp.parent_ns)
    if not b.parent_ns or not paired or not out.candidate.times_ns:
        return
    overhead = statistics.median(p - t for side in (r, rp, rb) for p, t in zip(side.parent_ns, side.inproc_ns))
    blocked = [max(t, int(pc - overhead - floor_ns)) for pc, t in zip(b.parent_ns, b.inproc_ns)]
    problem, metrics = own_work_problem(out.candidate.times_ns, blocked, rp.inproc_ns, rb.inproc_ns)
    out.metrics.update(metrics)
    if problem:
        out.problems.append(("unwatched", problem))


__all__ = ["BLOCKED_CALLS", "CrossCheck", "SideTiming", "TimingOutcome", "cross_check", "own_work_problem",
           "quantile", "run_timing"]
