"""A stored run as the report layer's ReportRun (the one bridge from store to report)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from harness.config import load_config
from harness.paths import data_dir
from harness.report.model import ReportRun, ReportTrial
from harness.results import CheckResult, Finding
from harness.store import RunRow, Store, TrialRow


def _rel(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        return str(p.resolve().relative_to(root.resolve())) if p.is_absolute() else path
    except ValueError:
        return path


def trial_view(trial: TrialRow, run: RunRow, *, root: Path) -> ReportTrial:
    completion = trial.completion or {}
    grade = trial.grade or {}
    score = grade.get("score") or {}
    checks = [CheckResult.model_validate(c) for c in grade.get("results", [])]
    for check in checks:
        check.log_path = _rel(check.log_path, root)
    if trial.status == "error":
        verdict, reason = "error", f"model call failed: {trial.error}"
    elif trial.status == "pending":
        verdict, reason = "incomplete", "not answered yet (resume the run)"
    elif not grade:
        verdict, reason = "incomplete", "answered, not graded yet"
    else:
        verdict, reason = score["verdict"], score.get("reason", "")
    cost = None
    if completion:
        cost = load_config().cost_usd(completion.get("model", ""), completion.get("input_tokens", 0),
                                      completion.get("output_tokens", 0), completion.get("cached_tokens", 0))
    prompt = trial.prompt or {}
    artifacts = root / "artifacts" / trial.run_id / f"trial-{trial.id}"
    latest = sorted(artifacts.glob("grade-*")) if artifacts.is_dir() else []
    return ReportTrial(
        run_id=trial.run_id, case_id=trial.case_id, model=trial.model, arm=trial.arm,  # type: ignore[arg-type]
        run_index=trial.run_index, verdict=verdict, verdict_reason=reason,
        assertions_passed=score.get("assertions_passed", 0), assertions_total=score.get("assertions_total", 0),
        input_tokens=completion.get("input_tokens", 0), output_tokens=completion.get("output_tokens", 0),
        cached_tokens=completion.get("cached_tokens", 0), cost_usd=cost, latency_s=completion.get("latency_s"),
        checks=checks, device=grade.get("device"),
        prompt=(f"[system]\n{prompt.get('system', '')}\n\n[user]\n{prompt.get('user', '')}" if prompt else ""),
        answer=completion.get("text", ""), error=trial.error,
        extraction=[Finding.model_validate(f) for f in grade.get("extraction", [])],
        artifacts_dir=_rel(str(latest[-1]), root) if latest else None,
    )


def report_run(store: Store, run_id: str) -> ReportRun:
    run = store.get_run(run_id)
    root = data_dir()
    trials = store.trials(run.id)
    levels = {t.grade.get("level") for t in trials if t.grade}
    devices = {t.grade.get("device") for t in trials if t.grade}
    skill = run.skill or {}
    return ReportRun(
        run_id=run.id, created=datetime.fromisoformat(run.created), skill_name=skill.get("name"),
        skill_sha256=skill.get("sha256"), skill_tokens=skill.get("estimated_tokens"),
        level=levels.pop() if len(levels) == 1 else run.config.get("resolved_level"),
        device=devices.pop() if len(devices) == 1 else run.config.get("device"),
        env={k: v for k, v in run.env.items() if isinstance(v, str | int | float | bool) or v is None},
        notes=["single-turn evaluation: the student answers in one message without tools",
               f"run status: {run.status}"],
        trials=[trial_view(t, run, root=root) for t in trials],
    )
