"""`kernelgrade runs show / export / import` on a generate run, made with the SCRIPTED
TEACHER FIXTURE and a scripted student over the OpenAI protocol (tests/fakes/openai_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.workflows.generate import run_generate, start_generate
from harness.workflows.generate_options import GenerateOptions
from harness.workflows.generate_log import generate_step, linked_runs, teacher_calls
from harness.store.db import Store
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.teacher.scripted import ScriptedTeacher, canned, echo_student

REPO = Path(__file__).resolve().parents[2]
TASK = "build H100 kernels with kernel-builder"


@pytest.fixture
def generate_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A finished generate run whose teacher refused one answer (a call with a problem) and refined once."""
    monkeypatch.chdir(tmp_path)  # skills/ and cases/ land here
    script = {"cases": [canned("cases.json")], "skill": [canned("skill_invalid.md"), canned("skill_v1.md")],
              "refine": [canned("skill_v2.md")]}
    store = Store()
    with FakeOpenAIServer(ScriptedTeacher(script)) as ts, FakeOpenAIServer(echo_student) as ss:
        opts = GenerateOptions(task=TASK, teacher="fake-teacher", students=["fake-student"],
                               teacher_base_url=ts.base_url, eval_base_url=ss.base_url, runs=2, level="text",
                               attempts=1, holdout_fraction=0.3, iterations=1)
        run_id = start_generate(opts, store)
        run_generate(run_id, store)
    return run_id


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "250"})


def test_runs_show_of_a_generate_run_lists_its_teacher_calls_and_eval_runs(generate_run: str) -> None:
    store = Store()
    phases = linked_runs(store, generate_run)
    assert list(phases) == ["train-0", "train-1", "holdout"]

    out = _cli("runs", "show", generate_run)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"generate run {generate_run}" in text and TASK in text and "7 train, 3 held out" in text
    for phase, run_id in phases.items():
        assert any(phase in line and run_id in line for line in text.splitlines()), (phase, text)
    assert "0/6" in text and "6/6" in text  # held out: baseline 0 of 6, with the skill 6 of 6
    assert f"kernelgrade runs show {phases['holdout']}" in text
    assert "invalid" in text and "references/missing.md" in text  # the refused answer and why

    data = json.loads(_cli("runs", "show", generate_run, "--json").stdout)
    assert [r["phase"] for r in data["eval_runs"]] == ["train-0", "train-1", "holdout"]
    assert [(c["step"], c["status"]) for c in data["teacher_calls"]] == [
        ("cases", "ok"), ("draft-0", "invalid"), ("draft-0", "ok"), ("draft-1", "ok")]
    holdout = data["eval_runs"][-1]
    assert holdout["trials"] == 12 and holdout["passed"] == {"with_skill": 6, "baseline": 0}

    # Reports of trials are for its eval runs: one clear line, not an empty table.
    out = _cli("runs", "show", generate_run, "--html", "x.html")
    assert out.returncode == 2 and phases["holdout"] in out.stderr and "Traceback" not in out.stderr
    out = _cli("runs", "compare", generate_run, phases["holdout"])
    assert out.returncode == 2 and "a generate run" in out.stderr


def test_runs_list_counts_a_generate_runs_trials_in_its_eval_runs(generate_run: str) -> None:
    store = Store()
    rows = {r["id"]: r for r in store.list_runs()}
    children = linked_runs(store, generate_run).values()
    assert rows[generate_run]["trials"] == sum(rows[c]["trials"] for c in children) > 0
    assert rows[generate_run]["answered"] == sum(rows[c]["answered"] for c in children)
    assert all(rows[c]["trials"] == len(store.trials(c)) for c in children)  # eval runs count only their own
    out = _cli("runs")
    line = next(ln for ln in out.stdout.splitlines() if generate_run in ln)
    assert "fake-student" in line and f" {rows[generate_run]['trials']} " in line


def _snapshot(store: Store, run_id: str) -> dict:
    """Everything stored for a generate run and its eval runs, without store-local ids."""
    def trial(t):
        return t.model_dump(exclude={"id", "graded"})

    def grades(run):
        rows = store.execute("SELECT t.case_id, t.model, t.arm, t.run_index, g.graded, g.level, g.device, g.verdict,"
                             " g.grade, g.version FROM grades g JOIN trials t ON t.id = g.trial_id"
                             " WHERE t.run_id=? ORDER BY g.id", (run,)).fetchall()
        return [tuple(r) for r in rows]

    runs = {run_id: store.get_run(run_id), **{r: store.get_run(r) for r in linked_runs(store, run_id).values()}}
    return {
        "runs": {r: run.model_dump() for r, run in runs.items()},
        "trials": {r: sorted((trial(t) for t in store.trials(r)), key=str) for r in runs},
        "grades": {r: grades(r) for r in runs},
        "teacher_calls": [{k: v for k, v in c.items() if k != "id"} for c in teacher_calls(store, run_id)],
        "steps": {s: generate_step(store, run_id, s)
                  for s in ("source", "cases", "split", "draft-0", "draft-1", "write", "eval-holdout")},
    }


def test_export_then_import_of_a_generate_run_loses_nothing(generate_run: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(Store(), generate_run)
    assert len(before["teacher_calls"]) == 4 and all(c["request"]["user"] for c in before["teacher_calls"])
    archive = tmp_path / "generate.tar"
    out = _cli("runs", "export", generate_run, "-o", str(archive))
    assert out.returncode == 0, out.stderr

    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "elsewhere"))  # another machine's store
    out = _cli("runs", "import", str(archive))
    assert out.returncode == 0, out.stderr
    after = _snapshot(Store(), generate_run)
    assert after["teacher_calls"] == before["teacher_calls"]  # prompts, answers, verdicts, in order
    assert after["steps"] == before["steps"]
    assert after == before
    assert _cli("runs", "show", generate_run).returncode == 0
    assert _cli("runs", "import", str(archive)).returncode == 2  # already there: refused, nothing doubled
    assert len(teacher_calls(Store(), generate_run)) == 4
