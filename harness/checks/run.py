"""The `run` check: build (CPU) or take the compile check's build (CUDA), load the candidate
in a child process, prove it correct on secret-seeded inputs and apply the anti-cheat rules.

Timing is the `speedup` check; this one leaves its plan in ctx.state["run_plan"].
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import ModuleType

import torch

from harness.checks.base import CheckContext
from harness.common.errors import UserError
from harness.inputs.reference import load_reference_module, op_name_of, resolve_reference_path, tolerance
from harness.common.results import CheckResult, Finding
from sandbox.programs.child_common import seed_for
from harness.execute.inputs import CallInputs
from harness.execute.judge import OUTPUT_KINDS, CallJudgement, bit_equal, classify_ops, judge_outputs, summarize
from harness.execute.library_imports import LibraryReport, libraries_of, read_library
from harness.execute.runner import CallRecord, CallSpec, RunPlan, TimingPlan, clean_workdir, new_seed, \
    rebound_problem, run_candidate_calls, run_reference_outputs

log = logging.getLogger(__name__)
NAME = "run"
#: Extra calls with fresh inputs on the first shapes: a result cached by shape shows up.
REPEATS = 2


def _reference(ctx: CheckContext) -> Path | None:
    op = ctx.case.kernel.op if ctx.case is not None and ctx.case.kernel is not None else ctx.options.op
    # A reference.py inside a model's answer is untrusted: only bare `check PROJECT` uses one.
    project = ctx.project_dir if ctx.case is None else None
    return resolve_reference_path(explicit=ctx.options.reference, op=op, project_dir=project)


def _shapes_dtypes(ctx: CheckContext, ref: ModuleType) -> tuple[list[list[int]], list[str]]:
    spec = ctx.case.kernel if ctx.case is not None else None
    if spec is not None and spec.shapes:
        shapes = spec.shapes
    elif ctx.device == "cpu" and getattr(ref, "TEST_SHAPES", None):
        shapes = ref.TEST_SHAPES  # small shapes on CPU (and in CI), keeping the awkward sizes
    else:
        shapes = ref.SHAPES
    dtypes = spec.dtypes if spec is not None and spec.dtypes else list(ref.DTYPES)
    return [list(s) for s in shapes], [str(d) for d in dtypes]


def _build(ctx: CheckContext) -> tuple[Path, str, str, bool] | CheckResult:
    """(package dir, package name, op namespace, cache hit) or the result to return."""
    if ctx.device == "cpu":
        from harness.project.info import read_project
        from harness.build.cpu_extension import NO_CPU_KERNEL, build_cpu_extension

        build = ctx.state.get("cpu_build")
        if build is None:
            build = build_cpu_extension(read_project(ctx.project_dir), artifacts=ctx.artifacts,
                                        sandbox=ctx.options.sandbox, timeout_s=ctx.options.compile_timeout_s)
            ctx.state["cpu_build"] = build
        if not build.ok:
            if build.reason == NO_CPU_KERNEL and ctx.case is None:
                raise UserError(f"{ctx.project_dir / 'build.toml'}: {NO_CPU_KERNEL}")
            return CheckResult(name=NAME, status="fail", reason=f"CPU build: {build.reason}",
                               findings=[Finding(severity="error", key="build", reason=build.reason)],
                               log_path=str(build.log_path) if build.log_path else None, device="cpu")
        return build.package_dir, build.package_dir.name, build.ext_name, build.cache_hit
    build = ctx.state.get("cuda_build")
    if build is None or not getattr(build, "ok", False) or getattr(build, "package_dir", None) is None:
        compiled = ctx.prior.get("compile")
        why = next((f.reason for f in (compiled.findings if compiled else []) if f.key == "link"), None)
        return CheckResult.skip(NAME, "no loadable CUDA build from the compile check" + (f" ({why})" if why else ""))
    return build.package_dir, build.package_dir.name, build.ext_name, bool(getattr(build, "cache_hit", False))


def make_plan(ctx: CheckContext, ref_path: Path, ref: ModuleType, package_dir: Path, package: str,
              ext_ns: str, seed: int) -> RunPlan:
    from sandbox.programs.devices import get_device

    shapes, dtypes = _shapes_dtypes(ctx, ref)
    calls: list[CallSpec] = []
    for dtype in dtypes:
        order = shapes + shapes[:REPEATS]
        for shape in order:
            idx = len(calls)
            calls.append(CallSpec(id=idx, shape=shape, dtype=dtype, seed=seed_for(seed, idx)))
    spec = ctx.case.kernel if ctx.case is not None else None
    tolerances = {d: tolerance(ref, d, spec.atol if spec else None, spec.rtol if spec else None) for d in dtypes}
    dev = get_device(ctx.device)
    iters = ctx.options.timed_iters or dev.default_timed_iters
    rounds = int(ctx.options.timing_rounds or dev.default_rounds)
    largest = max(shapes, key=lambda s: (_numel(s), s))
    baseline = ctx.options.baseline or (spec.baseline if spec is not None else "eager")
    timing = TimingPlan(shape=largest, dtype=dtypes[0], iters=iters, warmup=dev.default_warmup, rounds=rounds,
                        baseline=baseline)
    replaced = [op_name_of(ref_path), str(ref.API), *list(getattr(ref, "TORCH_OPS", []) or [])]
    api = ctx.case.kernel.api_name if spec is not None else str(ref.API)
    workdir = ctx.artifacts / "run"
    clean_workdir(workdir)
    return RunPlan(device=ctx.device, reference_path=ref_path.resolve(), package_parent=package_dir.parent,
                   package=package, api=api, ext_namespace=ext_ns, replaced_ops=replaced, calls=calls,
                   tolerances=tolerances, seed=seed, workdir=workdir, sandbox=ctx.options.sandbox,
                   timeout_s=ctx.options.run_timeout_s, timing=timing)


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _replay_problems(rec: CallRecord, plan: RunPlan, label: str, refs: dict, x2: tuple) -> tuple[list, bool]:
    """(tripwire problems of the watched replay, whether its outputs passed the output rules)."""
    replay = rec.replay
    if replay is None:
        return [], False
    trace = replay.get("trace") or {}
    problems: list[tuple[str, str]] = []
    torch_op, compute = classify_ops(list(trace.get("dispatched", [])) + list(trace.get("profiled", [])),
                                     plan.ext_namespace, plan.replaced_ops)
    if torch_op:
        problems.append(("torch_op", f"{label}: calls the PyTorch op it replaces ({', '.join(torch_op)})"))
    if compute:
        problems.append(("pytorch_compute", f"{label}: computes with PyTorch ops "
                                            f"({', '.join(compute[:6])}) instead of its own kernel"))
    if trace and not trace.get("evidence"):
        problems.append((trace.get("evidence_kind") or "no_own_code",
                         f"{label}: {trace.get('evidence_detail', 'own code did not run')}"))
    markers = trace.get("markers") or [True, True]
    if trace and not all(markers):
        problems.append(("hidden_torch", f"{label}: calls PyTorch from inside its own op unseen: the profiler's "
                                         f"hooks were off when the runner's own marker ran after the call"))
    if "error" in replay:
        return problems, False
    j = CallJudgement()
    outs = [o.tensor for o in replay["outputs"]]
    readable = {k for k, o in enumerate(replay["outputs"]) if o.problem is None}
    atol, rtol = plan.tolerances[rec_dtype(plan, rec.id)]
    judge_outputs(outs, refs["x2"], ref_inputs=list(x2), earlier=[], atol=atol, rtol=rtol, label=label,
                  judgement=j, judged=readable)
    clean = len(readable) == len(replay["outputs"]) and not [k for k, _ in j.problems if k in OUTPUT_KINDS]
    return problems, clean


def rec_dtype(plan: RunPlan, cid: int) -> str:
    return next(c.dtype for c in plan.calls if c.id == cid)


def _original_problems(rec: CallRecord, plan: RunPlan, label: str, refs: dict, inputs: CallInputs,
                       earlier: list, buffers: dict[int, int], j: CallJudgement) -> None:
    """Everything about the call as it ran unwatched, into `j`."""
    for out in rec.outputs:
        if out.problem:
            j.problems.append((out.problem[0], f"{label}: {out.problem[1]}"))
    if rec.modes_left:
        j.problems.append(("not_ready", f"{label}: output not ready when the call returned: it left "
                                        f"{', '.join(rec.modes_left)} on the dispatch stack, which runs its code "
                                        f"when the judge next touches the output"))
    for k in rec.file_differs:
        j.problems.append(("rewritten", f"{label}: outputs changed after the call returned: output {k} in "
                                        f"call_{rec.id}.pt is not what the call returned (the saved copy was "
                                        f"rewritten)"))
    late = [k for k in rec.changed_later if k not in rec.file_differs]
    if late:
        j.problems.append(("deferred", f"{label}: output {', '.join(map(str, late))} changed after the call had "
                                       f"returned (written during a later call): the work is deferred or batched "
                                       f"across calls, so a timer around one call misses it"))
    for k, out in enumerate(rec.outputs):
        ptr = out.desc.get("ptr")
        if isinstance(ptr, int) and ptr in buffers:
            j.problems.append(("cached", f"{label}: output {k} is the buffer returned by call {buffers[ptr]} "
                                         f"(a cached result)"))
        elif isinstance(ptr, int) and out.tensor is not None and out.tensor.numel():
            buffers[ptr] = rec.id
    for i, (after, given) in enumerate(zip(rec.inputs_after, inputs.real)):
        if after is not None and isinstance(given, torch.Tensor) and not bit_equal(after, given):
            j.problems.append(("mutates_input", f"{label}: modifies its input #{i}"))
    atol, rtol = plan.tolerances[rec_dtype(plan, rec.id)]
    outs = [o.tensor for o in rec.outputs]
    judged = {k for k, o in enumerate(rec.outputs) if o.problem is None}
    judge_outputs(outs, refs["x2"], ref_inputs=list(inputs.real), earlier=earlier, atol=atol, rtol=rtol,
                  label=label, judgement=j, judged=judged, decoys=refs)


def judge_calls(plan: RunPlan, library: LibraryReport | None = None
                ) -> tuple[list[tuple[str, str]], dict[str, float | int | None], list[dict]]:
    """Run the candidate's correctness calls and the reference's, then compare."""
    got = run_candidate_calls(plan)
    problems: list[tuple[str, str]] = [("forged", f"record not confirmed by the trusted side: {v}")
                                       for v in got.violations]
    if got.processes:
        problems.append(("processes", got.processes))
    if rebound_problem(got.rebound):
        problems.append(rebound_problem(got.rebound))
    if got.patched:
        problems.append(("monkeypatch", f"monkeypatches {', '.join(got.patched)} (checker or timer)"))
    if library is not None:
        problems += library.problems
    base = {"calls": len(plan.calls), "sandbox": got.backend, "child": "; ".join(got.notes)}
    if got.fatal:
        if got.fatal_kind != "processes":
            problems.append((got.fatal_kind, got.fatal))
        return problems, {**base, "calls_ok": 0}, []
    ran = {cid: got.inputs[cid] for cid, rec in got.records.items() if rec.status == "ok"}
    refs_by_call = run_reference_outputs(plan, ran, "reference_outputs") if ran else {}
    earlier: list[tuple[str, list, list]] = []
    buffers: dict[int, int] = {}
    per_call: list[dict] = []
    worst_abs = worst_rel = None
    calls_ok = 0
    unwatched: list[tuple[str, str]] = []
    replays_clean: list[bool] = []
    for call in plan.calls:
        label = f"call {call.id} {tuple(call.shape)} {call.dtype}"
        rec = got.records.get(call.id) or CallRecord(id=call.id, error="no result")
        entry = {"id": call.id, "label": label, "shape": call.shape, "dtype": call.dtype, "seed": call.seed}
        if rec.status != "ok":
            problems.append(("crash", f"{label}: {rec.error or 'failed'}"))
            per_call.append({**entry, "status": "error", "error": rec.error})
            continue
        refs = refs_by_call[call.id]
        j = CallJudgement()
        _original_problems(rec, plan, label, refs, got.inputs[call.id], earlier, buffers, j)
        tripwires, replay_clean = _replay_problems(rec, plan, label, refs, got.inputs[call.id].real)
        if rec.replay is not None:
            replays_clean.append(replay_clean)
            first = next(((k, m) for k, m in summarize(j.problems) if k in OUTPUT_KINDS), None)
            if replay_clean and first:
                unwatched.append(("unwatched", f"{label}: behaved differently when not watched: unwatched it "
                                               f"failed ({first[0]}; its own finding says how), "
                                               f"watched (the same call replayed under the runner's observers) it "
                                               f"returned a correct result"))
        call_problems = j.problems + tripwires
        problems.extend(call_problems)
        outs = [o.tensor for o in rec.outputs]
        earlier.append((f"call {call.id}", outs, refs["x2"]))
        if j.max_abs_err is not None:
            worst_abs = max(worst_abs or 0.0, j.max_abs_err)
            worst_rel = max(worst_rel or 0.0, j.max_rel_err or 0.0)
        ok = not call_problems
        calls_ok += ok
        trace = (rec.replay or {}).get("trace") or {}
        per_call.append({**entry, "status": "ok" if ok else "fail", "max_abs_err": j.max_abs_err,
                         "problems": call_problems, "ext_ops": trace.get("ext_ops"),
                         "poisoned_allocs": trace.get("poisoned_allocs"), "t_ns": rec.t_ns, "parent_ns": rec.parent_ns})
    # Watched, it was always right; unwatched, it was not: the calls it can tell apart differ.
    if unwatched and replays_clean and all(replays_clean):
        problems += unwatched
    metrics = {**base, "calls_ok": calls_ok, "max_abs_err": worst_abs, "max_rel_err": worst_rel}
    return problems, metrics, per_call


def check_run(ctx: CheckContext) -> CheckResult:
    if ctx.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return CheckResult.skip(NAME, "no CUDA device")
    ref_path = _reference(ctx)
    if ref_path is None:
        return CheckResult.skip(NAME, "no reference")
    if ctx.project_dir is None:
        return CheckResult.skip(NAME, "no project to run")
    built = _build(ctx)
    if isinstance(built, CheckResult):
        return built
    package_dir, package, ext_ns, cache_hit = built
    ref = load_reference_module(ref_path)
    seed = int(ctx.options.seed or new_seed())
    plan = make_plan(ctx, ref_path, ref, package_dir, package, ext_ns, seed)
    library = read_library(libraries_of(package_dir), ext_namespace=ext_ns, replaced=plan.replaced_ops)
    problems, metrics, per_call = judge_calls(plan, library)
    findings = [Finding(severity="error", key=kind, reason=msg) for kind, msg in summarize(problems)]
    findings += [Finding(severity="warning", key="library", reason=w) for w in library.warnings]
    findings += [Finding(severity="note", key="library", reason=n) for n in library.notes]
    log_path = ctx.artifacts / "run.json"
    log_path.write_text(json.dumps({"device": ctx.device, "seed": seed, "reference": str(ref_path),
                                    "imports": library.imports, "calls": per_call}, indent=1, default=str))
    shapes = sorted({tuple(c.shape) for c in plan.calls})
    dtypes = sorted({c.dtype for c in plan.calls})
    metrics.update({"device": ctx.device, "seed": seed, "shapes": len(shapes), "dtypes": ",".join(dtypes),
                    "ext_namespace": ext_ns, "build_cached": cache_hit})
    if not any(f.severity == "error" for f in findings):
        ctx.state["run_plan"] = plan
    err = metrics.get("max_abs_err")
    device_label = ctx.device.upper()
    ok_reason = (f"{device_label}: correct on {metrics['calls']} calls ({len(shapes)} shapes x "
                 f"{len(dtypes)} dtypes), max_abs_err={err:.3g}" if err is not None else
                 f"{device_label}: correct on {metrics['calls']} calls")
    result = CheckResult.from_findings(NAME, findings, ok_reason=ok_reason, metrics=metrics,
                                       log_path=str(log_path))
    result.device = ctx.device
    return result


__all__ = ["check_run", "judge_calls", "make_plan"]
