"""The `run` check: build (CPU) or take the compile check's build (CUDA), load the candidate
in a child process, prove it correct on secret-seeded inputs and apply the anti-cheat rules.

Timing is the `speedup` check; this one leaves its plan in ctx.state["run_plan"].
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import ModuleType

from harness.checks.base import CheckContext
from harness.common.errors import UserError
from harness.inputs.reference import load_reference_module, op_name_of, resolve_reference_path, tolerance
from harness.common.results import CheckResult, Finding
from sandbox.programs.child_common import CallSpec, seed_for
from harness.execute.judge import CallJudgement, bit_equal, classify_ops, judge_outputs, summarize
from harness.execute.runner import RunPlan, TimingPlan, clean_workdir, load_tensors, new_seed, \
    run_candidate_calls, run_reference_outputs

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
    timing = TimingPlan(shape=largest, dtype=dtypes[0], iters=iters, warmup=dev.default_warmup, rounds=rounds)
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


def judge_calls(plan: RunPlan) -> tuple[list[tuple[str, str]], dict[str, float | int | None], list[dict]]:
    """Run the candidate's correctness calls and the reference's, then compare."""
    got = run_candidate_calls(plan)
    problems: list[tuple[str, str]] = []
    if got.patched:
        problems.append(("monkeypatch", f"monkeypatches {', '.join(got.patched)} (checker or timer)"))
    if got.fatal:
        problems.append(("load", got.fatal))
        return problems, {"calls": len(plan.calls), "calls_ok": 0}, []
    ref_files = run_reference_outputs(plan, plan.calls, "reference_outputs")
    earlier: list[tuple[str, list, list]] = []
    per_call: list[dict] = []
    worst_abs = worst_rel = None
    calls_ok = 0
    for call in plan.calls:
        label = f"call {call.id} {tuple(call.shape)} {call.dtype}"
        rec = got.records.get(call.id, {"status": "error", "error": "no result"})
        before = len(problems)
        if rec.get("status") != "ok":
            problems.append(("crash", f"{label}: {rec.get('error', 'failed')}"))
            per_call.append({"id": call.id, "label": label, "shape": call.shape, "dtype": call.dtype,
                             "seed": call.seed, "status": "error",
                             "error": rec.get("error")})
            continue
        cand = load_tensors(got.workdirs[call.id] / f"call_{call.id}.pt")
        refd = load_tensors(ref_files[call.id])
        outs, ref_outs, pristine = cand["outputs"], refd["outputs"], refd["inputs"]
        torch_op, compute = classify_ops(list(rec.get("dispatched", [])) + list(rec.get("profiled", [])),
                                         plan.ext_namespace, plan.replaced_ops)
        if torch_op:
            problems.append(("torch_op", f"{label}: calls the PyTorch op it replaces ({', '.join(torch_op)})"))
        if compute:
            problems.append(("pytorch_compute", f"{label}: computes with PyTorch ops "
                                                f"({', '.join(compute[:6])}) instead of its own kernel"))
        if not rec.get("evidence"):
            problems.append((rec.get("evidence_kind") or "no_own_code",
                             f"{label}: {rec.get('evidence_detail', 'own code did not run')}"))
        for note in rec.get("notes", []):
            problems.append(("shape", f"{label}: {note}"))
        for k, alias in enumerate(rec.get("aliases", [])):
            if not alias:
                continue
            if alias.get("input") is not None:
                problems.append(("aliases_input", f"{label}: output {k} is input #{alias['input']} itself "
                                                  f"(returns its input)"))
            if alias.get("earlier") is not None:
                problems.append(("cached", f"{label}: output {k} is the buffer returned by call "
                                           f"{alias['earlier']} (a cached result)"))
        for i, (after, orig) in enumerate(zip(cand.get("inputs", []), pristine)):
            if after is not None and orig is not None and not bit_equal(after, orig):
                problems.append(("mutates_input", f"{label}: modifies its input #{i}"))
        atol, rtol = plan.tolerances[call.dtype]
        j = CallJudgement()
        judge_outputs(outs, ref_outs, ref_inputs=pristine, earlier=earlier, atol=atol, rtol=rtol,
                      label=label, judgement=j)
        problems.extend(j.problems)
        earlier.append((f"call {call.id}", outs, ref_outs))
        if j.max_abs_err is not None:
            worst_abs = max(worst_abs or 0.0, j.max_abs_err)
            worst_rel = max(worst_rel or 0.0, j.max_rel_err or 0.0)
        ok = len(problems) == before
        calls_ok += ok
        per_call.append({"id": call.id, "label": label, "shape": call.shape, "dtype": call.dtype,
                         "seed": call.seed, "status": "ok" if ok else "fail",
                         "max_abs_err": j.max_abs_err, "problems": problems[before:],
                         "ext_ops": rec.get("ext_ops"), "poisoned_allocs": rec.get("poisoned_allocs")})
    metrics = {"calls": len(plan.calls), "calls_ok": calls_ok, "max_abs_err": worst_abs, "max_rel_err": worst_rel,
               "sandbox": got.backend}
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
    problems, metrics, per_call = judge_calls(plan)
    findings = [Finding(severity="error", key=kind, reason=msg) for kind, msg in summarize(problems)]
    log_path = ctx.artifacts / "run.json"
    log_path.write_text(json.dumps({"device": ctx.device, "seed": seed, "reference": str(ref_path),
                                    "calls": per_call}, indent=1, default=str))
    shapes = sorted({tuple(c.shape) for c in plan.calls})
    dtypes = sorted({c.dtype for c in plan.calls})
    metrics.update({"device": ctx.device, "seed": seed, "shapes": len(shapes), "dtypes": ",".join(dtypes),
                    "ext_namespace": ext_ns, "build_cached": cache_hit})
    if not findings:
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
