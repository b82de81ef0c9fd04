"""What agent mode itself costs, with the model and the checks stubbed (issue 17's benchmark).

1. The harness's cost per turn: run_agent_trial over a 12-turn scripted trajectory (read the
   skill, write the rmsnorm project, run_checks, fix, ... submit) against a client that answers
   at once, with the real store (SQLite, one commit per step), the real workspace (files on
   disk, no symlinks followed), the history rendered as OpenAI messages for every call, and a
   grader that returns a fixed result. Target: <= 5 ms per turn.
2. run_checks on an unchanged workspace (a cache hit: the files hashed, the stored result
   given back). Target: <= 0.2 s. With --real the first check is the real grader at compile
   level (warm content cache) and its time is printed too.

    .venv/bin/python benchmarks/agent_overhead.py [--trials 20] [--hits 200] [--real]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TURN_TARGET_MS = 5.0
HIT_TARGET_S = 0.2


def _project() -> dict[str, str]:
    root = REPO / "kernels_reference" / "rmsnorm"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "reference.py" and "__pycache__" not in p.parts}


def _stub_grade(case, ws, final, *, level, device, options, folder):
    """The checks stubbed: a fixed passing grade, after reading the files as the real one does."""
    from harness.common.results import CheckResult
    from harness.scoring.grade import Grade
    from harness.scoring.verdict import score

    files = ws.read_project()
    results = [CheckResult(name=n, status="pass", reason="stub") for n in case.required_checks]
    return Grade(results=results, required=case.required_checks, score=score(results, case.required_checks, level),
                 level=level, device=device), files


class _Client:
    """The model stubbed: a fixed 12-turn script, answered at once, after rendering the history
    as the OpenAI client does for each call."""

    provider, model = "stub", "stub-model"

    def __init__(self, files: dict[str, str]) -> None:
        from harness.agent.tools import check_call

        fix = {"build.toml": files["build.toml"]}
        c = check_call
        self.script = [
            [c("r", "read_file", {"path": "skill/SKILL.md"})],
            [c(f"w{i}", "write_file", {"path": p, "content": t}) for i, (p, t) in enumerate(files.items())],
            [c("k1", "run_checks", {})],
            [c("f1", "write_file", fix | {"path": "build.toml", "content": fix["build.toml"] + "\n"})],
            [c("k2", "run_checks", {})],
            [c("k3", "run_checks", {})],
            [c("l", "list_files", {})],
            [c("f2", "write_file", {"path": "build.toml", "content": fix["build.toml"]})],
            [c("k4", "run_checks", {"level": "text"})],
            [c("r2", "read_file", {"path": "rmsnorm_cuda/rmsnorm.cu"})],
            [c("k5", "run_checks", {})],
            [c("s", "submit", {})],
        ]

    def complete(self, request):
        from harness.agent.conversation import AssistantStep, Usage

        request.conversation.to_openai()
        turn = request.conversation.turns()
        calls = [call.model_copy(update={"id": f"{call.id}-{turn}"}) for call in self.script[turn]]
        return AssistantStep(text="", tool_calls=calls, usage=Usage(input_tokens=1000, output_tokens=50),
                             model=self.model)


def per_turn(trials: int) -> tuple[float, list[float]]:
    from harness.agent.loop import AgentSettings, AgentTrial, run_agent_trial
    from harness.inputs.cases import Case
    from harness.prompts.build import Prompt
    from harness.store.db import Store

    files = _project()
    skill = {"SKILL.md": "---\nname: demo\ndescription: demo\n---\nUse 9.0.\n", "references/notes.md": "x" * 4000}
    case = Case(id="rms", input="Write RMSNorm", expected={"contains": "9.0"},
                kernel={"op": "rmsnorm", "api": "rms_norm(input, weight, eps)", "checks": ["build_toml", "compile"]})
    store = Store()
    run_id = store.create_run(kind="eval", config={"mode": "agent"}, env={}, skill=None, cases=[case.model_dump()])
    store.add_trials(run_id, [("rms", "stub", "with_skill", i) for i in range(trials)])
    per_trial: list[float] = []
    for trial in store.trials(run_id):
        t = AgentTrial(store=store, trial=trial, case=case, client=_Client(files),
                       prompt=Prompt(system="system " * 200, user="task " * 300), skill_files=skill,
                       settings=AgentSettings(max_turns=12, level="compile", device="cuda"),
                       folder=Path(os.environ["KERNELGRADE_HOME"]) / "art" / f"t{trial.id}", grade=_stub_grade)
        t0 = time.perf_counter()
        end = run_agent_trial(t)
        per_trial.append(time.perf_counter() - t0)
        assert not isinstance(end, str) and end.outcome == "submitted", end
    turns = 12
    return statistics.median(per_trial) / turns * 1000, [x / turns * 1000 for x in per_trial]


def cache_hit(hits: int, real: bool) -> tuple[float, float, float | None]:
    from harness.agent.checks import WorkspaceChecks, grade_workspace
    from harness.agent.conversation import Conversation
    from harness.agent.workspace import Workspace
    from harness.checks.base import GradeOptions
    from harness.inputs.cases import Case

    case = Case(id="rms", input="x", expected={"contains": "9.0"},
                kernel={"op": "rmsnorm", "api": "rms_norm(input, weight, eps)", "checks": ["build_toml", "compile"]})
    root = Path(os.environ["KERNELGRADE_HOME"]) / "hit"
    ws = Workspace.create(root, None)
    for path, text in _project().items():
        ws.write_file(path, text)
    checks = WorkspaceChecks(case, ws, Conversation(system="s"), level="compile", device="cuda",
                             options=GradeOptions(), folder=root, grade=grade_workspace if real else _stub_grade)
    t0 = time.perf_counter()
    first, _ = checks(None)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(hits):
        t0 = time.perf_counter()
        text, detail = checks(None)
        times.append(time.perf_counter() - t0)
        assert detail["reused"] and "unchanged" in text
    return statistics.median(times), max(times), first_s if real else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="12-turn trajectories timed (default 20)")
    ap.add_argument("--hits", type=int, default=200, help="run_checks cache hits timed (default 200)")
    ap.add_argument("--real", action="store_true", help="the first run_checks is the real grader (compile level)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("KERNELGRADE_HOME", home)
        median_ms, all_ms = per_turn(args.trials)
        hit_s, hit_max_s, real_s = cache_hit(args.hits, args.real)
    print(f"harness cost per turn: median {median_ms:.2f} ms (min {min(all_ms):.2f}, max {max(all_ms):.2f}) over "
          f"{args.trials} trajectories of 12 turns, model and checks stubbed; target <= {TURN_TARGET_MS:g} ms: "
          f"{'met' if median_ms <= TURN_TARGET_MS else 'NOT met'}")
    print(f"run_checks on an unchanged workspace (cache hit): median {hit_s * 1000:.2f} ms, max {hit_max_s * 1000:.2f} ms "
          f"over {args.hits} calls; target <= {HIT_TARGET_S:g} s: {'met' if hit_s <= HIT_TARGET_S else 'NOT met'}")
    if real_s is not None:
        print(f"the first run_checks, real grader at compile level (content cache warm or cold): {real_s:.2f} s")
    if median_ms > TURN_TARGET_MS or hit_s > HIT_TARGET_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
