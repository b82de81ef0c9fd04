"""A stored run as the report layer's ReportRun (the one bridge from store to report)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from harness.common.config import load_config
from harness.common.paths import data_dir
from harness.common.errors import UserError
from harness.report.model import GenerateRunView, LinkedRunView, ReportRun, ReportTrial, TeacherCallView
from harness.agent.trajectory import TrajectoryStats
from harness.store.db import AgentStepRow, RunRow, Store, TrialRecord


def _rel(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        return str(p.resolve().relative_to(root.resolve())) if p.is_absolute() else path
    except ValueError:
        return path


def _agent_view(steps: list[AgentStepRow] | None, grade_verdict: str | None) -> TrajectoryStats:
    from harness.agent.conversation import step_from_json
    from harness.agent.trajectory import trajectory_stats

    return trajectory_stats([step_from_json(r.body) for r in steps or []], final_verdict=grade_verdict)


def agent_notes(run: RunRow) -> list[str]:
    """What the report says about how an agent run's trials were made."""
    cfg = run.config
    delivery = cfg.get("skill_delivery") or "on-demand"
    how = ("the skill's name and description in the system prompt, its files readable under skill/"
           if delivery == "on-demand" else "the whole skill inline in the first message")
    budget = f", at most {cfg['max_trial_tokens']:,} tokens" if cfg.get("max_trial_tokens") else ""
    return [f"agent evaluation: the student works through tools (read_file, write_file, list_files, run_checks, "
            f"submit) for up to {cfg.get('max_turns', 12)} turns{budget}",
            f"skill delivery {delivery}: {how}"]


def upskill_notes(run: RunRow) -> list[str]:
    """What the report says about a run imported from upskill's logs."""
    return [f"imported from upskill's run logs ({run.config.get('source', '?')}): each trial is one upskill run "
            "over all its cases, passing when every case passed (upskill's per-run rule); upskill's logs hold "
            "no answers and no per-case results"]


def trial_view(trial: TrialRecord, run: RunRow, *, root: Path,
               steps: list[AgentStepRow] | None = None) -> ReportTrial:
    completion, grade = trial.completion, trial.grade
    checks = [c.model_copy() for c in grade.results] if grade else []
    for check in checks:
        check.log_path = _rel(check.log_path, root)
    if trial.status == "error":
        verdict, reason = "error", f"model call failed: {trial.error}"
    elif trial.status == "pending":
        verdict, reason = "incomplete", "not answered yet (resume the run)"
    elif grade is None:
        verdict, reason = "incomplete", "answered, not graded yet"
    else:
        verdict, reason = grade.score.verdict, grade.score.reason
    cost = None
    if completion is not None:
        cost = load_config().completion_cost_usd(completion)  # cache reads/writes and batch at their prices
    prompt = trial.prompt or {}
    artifacts = root / "artifacts" / trial.run_id / f"trial-{trial.id}"
    agent = run.mode == "agent"
    # One-shot: the newest grade-* folder holds the extracted project; agent mode: the newest
    # session's final/ (the workspace as graded).
    pattern = "agent-*/final" if agent else "grade-*"
    latest = sorted(artifacts.glob(pattern), key=lambda p: p.stat().st_mtime) if artifacts.is_dir() else []
    return ReportTrial(
        run_id=trial.run_id, case_id=trial.case_id, model=trial.model, arm=trial.arm,  # type: ignore[arg-type]
        run_index=trial.run_index, verdict=verdict, verdict_reason=reason,
        assertions_passed=grade.score.assertions_passed if grade else 0,
        assertions_total=grade.score.assertions_total if grade else 0,
        input_tokens=completion.input_tokens if completion else 0,
        output_tokens=completion.output_tokens if completion else 0,
        cached_tokens=completion.cached_tokens if completion else 0, cost_usd=cost,
        cache_write_tokens=completion.cache_write_tokens if completion else 0,
        latency_s=completion.latency_s if completion else None,
        checks=checks, device=grade.device if grade else None,
        prompt=(f"[system]\n{prompt.get('system', '')}\n\n[user]\n{prompt.get('user', '')}" if prompt else ""),
        answer=completion.text if completion else "", error=trial.error,
        extraction=list(grade.extraction) if grade else [],
        artifacts_dir=_rel(str(latest[-1]), root) if latest else None,
        agent=_agent_view(steps, grade.score.verdict if grade else None) if agent else None,
    )


def report_run(store: Store, run_id: str) -> ReportRun:
    run = store.get_run(run_id)
    if run.kind == "generate":
        # Its trials live in the eval runs it made; an empty table would say nothing.
        raise UserError(f"run {run.id}: a generate run, with no trials of its own; `kernelgrade runs show "
                        f"{run.id}` lists the eval runs that hold them")
    root = data_dir()
    trials = store.trials(run.id)
    agent = run.mode == "agent"
    steps = store.agent_steps_of_run(run.id) if agent else {}
    levels = {t.grade.level for t in trials if t.grade}
    devices = {t.grade.device for t in trials if t.grade}
    skill = run.skill or {}
    return ReportRun(
        run_id=run.id, created=datetime.fromisoformat(run.created), skill_name=skill.get("name"),
        skill_sha256=skill.get("sha256"), skill_tokens=skill.get("estimated_tokens"),
        level=levels.pop() if len(levels) == 1 else run.config.get("resolved_level"),
        device=devices.pop() if len(devices) == 1 else run.config.get("device"),
        env={k: v for k, v in run.env.items() if isinstance(v, str | int | float | bool) or v is None},
        notes=[*(agent_notes(run) if agent else upskill_notes(run) if run.config.get("imported_from") else
                 ["single-turn evaluation: the student answers in one message without tools"]),
               *(["batch mode: answered through the provider's batch API, costed at batch prices"]
                 if run.mode == "batch" else []),
               f"run status: {run.status}"],
        source=run.config.get("imported_from") or "kernelgrade",
        mode="agent" if agent else "one-shot", skill_delivery=run.config.get("skill_delivery") if agent else None,
        max_turns=run.config.get("max_turns") if agent else None,
        trials=[trial_view(t, run, root=root, steps=steps.get(t.id)) for t in trials],
    )


def _linked_view(store: Store, phase: str, run_id: str) -> LinkedRunView:
    if run_id not in set(store.iter_run_ids()):
        return LinkedRunView(phase=phase, run_id=run_id, status="missing")
    trials = store.trials(run_id)
    view = LinkedRunView(phase=phase, run_id=run_id, status=store.get_run(run_id).status, trials=len(trials),
                         errors=sum(t.status == "error" for t in trials))
    for t in trials:
        verdict = t.grade.score.verdict if t.grade else None
        if verdict in ("pass", "fail"):
            view.graded[t.arm] = view.graded.get(t.arm, 0) + 1
            view.passed[t.arm] = view.passed.get(t.arm, 0) + (verdict == "pass")
    return view


def generate_view(store: Store, run_id: str) -> GenerateRunView:
    """What a generate run holds: its options, teacher calls, split, outputs and linked eval runs."""
    from harness.workflows.generate_log import generate_step, linked_runs, teacher_calls

    run = store.get_run(run_id)
    if run.kind != "generate":
        raise UserError(f"run {run.id}: a {run.kind} run, not a generate run")
    split = generate_step(store, run.id, "split") or {}
    written = generate_step(store, run.id, "write") or {}
    calls = [TeacherCallView(step=c["step"], attempt=c["attempt"], status=c["status"], problem=c["problem"],
                             output_tokens=(c["completion"] or {}).get("output_tokens"))
             for c in teacher_calls(store, run.id)]
    return GenerateRunView(
        run_id=run.id, created=datetime.fromisoformat(run.created), status=run.status, task=run.config["task"],
        teacher=run.config["teacher"], students=run.config["students"], name=run.config.get("name"),
        source=(generate_step(store, run.id, "source") or {}).get("kind", "none"),
        train_cases=split.get("train", []), holdout_cases=split.get("holdout", []),
        skill_path=written.get("skill_path"), cases_path=written.get("cases_path"), teacher_calls=calls,
        eval_runs=[_linked_view(store, phase, rid) for phase, rid in linked_runs(store, run.id).items()])
