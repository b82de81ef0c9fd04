"""Grading through an executor from the commands (issue 18): rescore and its --resume, the
progress bar's status line, each grade recording where it was made, `check --executor`."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from harness.cli.main import main
from harness.executors import ExecutorSettings, ExecutorStatus
from harness.store.db import Store
from harness.workflows.evaluate import Progress, rescore
from harness.workflows.scale import ticking
from tests.executors.runs import REFS, store_run, text_case


def _grade_rows(store: Store, run_id: str) -> list[tuple[int, int]]:
    return [tuple(r) for r in store.execute("SELECT g.trial_id, g.id FROM grades g JOIN trials t ON t.id = "
                                            "g.trial_id WHERE t.run_id = ? ORDER BY g.id", (run_id,)).fetchall()]


def _text_run(store: Store, n: int = 4) -> str:
    return store_run(store, [(text_case(i), f"hello {i}" if i % 2 == 0 else "goodbye") for i in range(n)])


def test_rescore_through_the_local_executor_records_where_and_resume_grades_nothing_twice(tmp_path) -> None:
    store = Store()
    run_id = _text_run(store)
    lines: list[str] = []
    graded = rescore(run_id, store, level="text", device="cpu", executor=ExecutorSettings(),
                     progress=Progress(on_status=lines.append))
    assert graded == 4 and len(_grade_rows(store, run_id)) == 4
    trials = store.trials(run_id)
    assert [t.grade.score.verdict for t in trials] == ["pass", "fail", "pass", "fail"]
    assert all(t.grade.where["executor"] == "local" and t.grade.where["node"] for t in trials)
    assert lines and lines[-1].startswith("local 1 node")  # the bar's "nodes · in flight" line

    rows = _grade_rows(store, run_id)
    assert main(["rescore", run_id, "--level", "text", "--device", "cpu", "--resume", "--json", str(tmp_path / "out.json")]) == 0
    assert _grade_rows(store, run_id) == rows  # nothing graded again
    assert main(["rescore", run_id, "--level", "text", "--device", "cpu"]) == 0
    again = _grade_rows(store, run_id)
    assert len(again) == 8 and Counter(t for t, _ in again) == {t.id: 2 for t in trials}


def test_resume_grades_only_what_has_no_grade_at_this_level() -> None:
    store = Store()
    run_id = _text_run(store, 3)
    first = store.trials(run_id)[0]
    rescore(run_id, store, level="text", device="cpu", executor=ExecutorSettings())
    store.execute("DELETE FROM grades WHERE trial_id != ?", (first.id,))
    notes: list[str] = []
    graded = rescore(run_id, store, level="text", device="cpu", executor=ExecutorSettings(), resume=True,
                     progress=Progress(on_note=notes.append))
    assert graded == 2 and Counter(t for t, _ in _grade_rows(store, run_id)) == {t.id: 1 for t in store.trials(run_id)}
    assert notes == ["--resume: 1 trial(s) already graded at this level, not graded again"]


class _Busy:
    name = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def status(self) -> ExecutorStatus:
        self.calls += 1
        return ExecutorStatus(executor="ray", nodes=["node-a", "node-b"], in_flight=3,
                              in_flight_by_node={"node-a": 2, "node-b": 1}, done_by_node=Counter({"node-a": 5}),
                              excluded={"node-c": "nvcc differs"})


def test_the_status_line_ticks_while_grading_and_names_nodes_and_tasks_in_flight() -> None:
    busy, seen = _Busy(), []
    with ticking(busy, seen.append, every_s=0.02):  # type: ignore[arg-type]
        time.sleep(0.15)
    assert len(seen) >= 3 and not any(t.name == "executor-status" for t in threading.enumerate())
    assert seen[-1] == "ray 2 nodes (1 left out) · 3 in flight (node-a 2, node-b 1) · done node-a 5"


def test_check_through_the_local_executor_gives_the_checks_of_the_plain_path(tmp_path, capsys) -> None:
    args = ["check", str(REFS / "rmsnorm"), "--level", "text", "--device", "cpu", "--json"]
    found = []
    for extra in ([], ["--executor", "local", "--cache-dir", str(tmp_path / "cache")]):
        assert main(args + extra) == 0
        out = json.loads(capsys.readouterr().out)
        found.append({r["name"]: r["status"] for r in out["results"]})
    assert found[0] == found[1] and found[0]["build_toml"] == "pass" and found[0]["compile"] == "skip"


def test_check_refuses_an_unknown_executor() -> None:
    assert main(["check", str(REFS / "rmsnorm"), "--executor", "slurm"]) == 2
