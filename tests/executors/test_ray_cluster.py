"""A real Ray cluster of three grading nodes on this machine re-grades a stored run of CPU-device
answers (the reference ops' CPU twins, cheat projects, text answers) with the verdicts of
`--executor local`; the node whose toolchain differs gets no task, and the run says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.base import GradeOptions
from harness.common.check_table import PROJECT_CHECKS
from harness.executors.local import LocalExecutor
from harness.executors.regrade import project_task, regrade
from harness.executors.tasks import GradeTask
from harness.store.db import Store
from tests.executors.ray_cluster import (fake_nvcc_dir, other_toolchain_node, pinned_sha, ray_or_missing,
                                         start_cluster, timing_node)
from tests.executors.runs import CHEAT_NAMES, CHEATS, REFS, as_answer, cpu_batch, store_run, text_case, twin_case
from tests.expected import read_expected

pytestmark = pytest.mark.slow
OPTIONS = GradeOptions(timed_iters=20, timing_rounds=2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray_or_missing()
    fake = fake_nvcc_dir(tmp_path_factory.mktemp("fake-cuda-12.4"))
    home = tmp_path_factory.mktemp("nodes-home")
    with pinned_sha():
        cluster, nodes = start_cluster([timing_node(), timing_node(), other_toolchain_node(fake)], home=home)
        yield cluster, nodes
        cluster.shutdown()


@pytest.fixture(scope="module")
def executor(cluster):
    from harness.executors.ray_executor import RayExecutor

    ex = RayExecutor(address=cluster[0].address, level="run", device="cpu")
    yield ex
    ex.close()


def _summary(grade) -> dict:
    """What must be equal between executors: the verdict, each check's status, and the kind of
    each failure (reasons hold measured numbers, which differ run to run). A timing's pass or
    fail is a measurement on a shared 2-core machine, not a decision of the executor: it must
    have been measured in both, and the verdict is compared where nothing was timed."""
    timed = any(r.name == "speedup" for r in grade.results)
    checks = {r.name: (r.status, [f.key for f in r.findings if f.severity == "error"]) for r in grade.results}
    if timed:
        speedup = next(r for r in grade.results if r.name == "speedup")
        checks["speedup"] = ("measured" if speedup.status in ("pass", "fail") and speedup.metrics.get("speedup")
                             else speedup.status, [])
    return {"verdict": "timed" if timed else grade.score.verdict, "checks": checks}


def test_ray_grades_as_local_does(executor, cluster) -> None:
    odd = cluster[1][2].node_id
    store = Store()
    run_id = store_run(store, cpu_batch())
    with LocalExecutor(slots=2) as local:
        done = regrade(store, run_id, local, level="run", device="cpu", options=OPTIONS)
    assert done.graded == len(cpu_batch()) and not done.failed
    local_grades = {t.case_id: t.grade for t in store.trials(run_id)}

    outcomes = []
    result = regrade(store, run_id, executor, level="run", device="cpu", options=OPTIONS, on_outcome=outcomes.append)
    assert result.graded == len(local_grades) and not result.failed, result.failed
    ray_trials = store.trials(run_id)
    assert {t.case_id: _summary(t.grade) for t in ray_trials} == {k: _summary(g) for k, g in local_grades.items()}

    verdicts = {t.case_id: t.grade.score.verdict for t in ray_trials}
    assert all(verdicts[f"twin-{op}"] == "pass" for op in ("rmsnorm", "softmax", "matmul"))
    assert verdicts["text-0"] == "pass" and verdicts["text-1"] == "fail"
    for name in CHEAT_NAMES:
        grade = next(t.grade for t in ray_trials if t.case_id == f"cheat-{name}")
        run = next(r for r in grade.results if r.name == "run")
        assert grade.score.verdict == "fail" and read_expected(CHEATS / name).reason in run.reason, run.reason

    # Where each step ran: never on the odd node; compile then run for kernel answers; the
    # timed one held the node's timing slot; logs came back to this machine's artifacts.
    assert {n for o in outcomes for n in (p.node_id for p in o.steps)} <= {n.node_id for n in cluster[1][:2]}
    assert odd not in {p.node_id for o in outcomes for p in o.steps}
    by_key = {t.id: t for t in ray_trials}
    for o in outcomes:
        trial = by_key[int(o.key)]
        kinds = [p.step for p in o.steps]
        assert kinds == (["text"] if trial.case_id.startswith("text") else ["compile", "run"]), (trial.case_id, kinds)
        assert o.where.executor == "ray" and o.where.node and o.where.torch and o.where.nvcc
    run_log = next(r.log_path for t in ray_trials if t.case_id == "twin-rmsnorm" for r in t.grade.results
                   if r.name == "run")
    assert Path(run_log).is_file() and "kghome" in run_log  # inside this test's KERNELGRADE_HOME


def test_the_node_with_another_toolchain_is_reported(executor, cluster) -> None:
    odd = cluster[1][2].node_id
    reasons = {label: why for label, why in executor.excluded.items() if odd[:8] in label}
    assert len(reasons) == 1
    why = next(iter(reasons.values()))
    assert "nvcc Cuda compilation tools, release 12.4, V12.4.131 differs" in why and "release 13.0" in why
    lines = executor.describe()
    assert any("gets no tasks" in line and odd[:8] in line and "release 12.4" in line for line in lines), lines
    status = executor.status()
    assert status.excluded and len(status.nodes) == 2 and "left out" in status.line()


def test_a_step_that_raises_is_a_failure_and_the_others_go_on(executor) -> None:
    bad = GradeTask(key="bad", case={"input": "x", "kernel": {"op": "rmsnorm", "checks": ["compile"]}},
                    text="nothing", level="compile", device="cpu")
    good = GradeTask(key="good", case={"input": "say hi", "expected": {"contains": ["hi"]}}, text="hi",
                     level="compile", device="cpu")
    outcomes = {o.key: o for o in executor.map_grades([bad, good])}
    assert outcomes["bad"].grade is None and outcomes["bad"].error_type == "ValidationError"
    assert outcomes["good"].grade.score.verdict == "pass"


def test_a_project_travels_as_content(executor, tmp_path) -> None:
    """`check PROJECT` through Ray: the node reads the project's files from the task, not from disk."""
    task = project_task(REFS / "rmsnorm", level="compile", device="cpu", artifacts=tmp_path / "check")
    with LocalExecutor(slots=1) as local:
        here = local.grade(task)
    there = executor.grade(task)
    assert [r.name for r in there.grade.results] == list(PROJECT_CHECKS)
    assert _summary(there.grade) == _summary(here.grade) and there.grade.score.verdict == "pass"


def _grade_rows(store: Store, run_id: str) -> dict[int, list[int]]:
    """trial id -> the ids of its grade rows."""
    rows = store.execute("SELECT g.trial_id, g.id FROM grades g JOIN trials t ON t.id = g.trial_id "
                         "WHERE t.run_id = ? ORDER BY g.id", (run_id,)).fetchall()
    out: dict[int, list[int]] = {t.id: [] for t in store.trials(run_id)}
    for trial_id, grade_id in rows:
        out[trial_id].append(grade_id)
    return out


def _kernelgrade(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "harness.cli.main", *args]


def test_a_driver_killed_mid_rescore_resumes_without_regrading(cluster, tmp_path) -> None:
    """`kernelgrade rescore --executor ray` killed (SIGKILL) after its first grades; `rescore
    --resume` grades the rest and redoes no stored grade. The killed driver compiles into a
    fresh --cache-dir, so kernels are still compiling when the kill lands."""
    import os
    import signal
    import subprocess
    import time

    store = Store()
    items = [(text_case(i), f"hello {i}") for i in range(4)] + [(twin_case(op), as_answer(REFS / op))
                                                               for op in ("rmsnorm", "softmax")]
    run_id = store_run(store, items)
    address = cluster[0].address
    common = ["rescore", run_id, "--level", "compile", "--device", "cpu", "--executor", "ray",
              "--ray-address", address]
    first = subprocess.Popen(_kernelgrade(*common, "--cache-dir", str(tmp_path / "cold-cache")),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not any(_grade_rows(store, run_id).values()):
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no grade within 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = _grade_rows(store, run_id)
    graded_before = {t: ids for t, ids in before.items() if ids}
    assert graded_before and len(graded_before) < len(before), before  # killed in the middle

    done = subprocess.run(_kernelgrade(*common, "--resume"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    after = _grade_rows(store, run_id)
    assert all(len(ids) == 1 for ids in after.values()), after  # every trial graded exactly once
    assert {t: after[t] for t in graded_before} == graded_before  # no stored grade redone
    assert f"{len(graded_before)} trial(s) already graded" in done.stderr
    # the command says which node got no tasks, and why
    assert any("gets no tasks" in line and "release 12.4" in line for line in done.stderr.splitlines()), done.stderr
    verdicts = {t.case_id: t.grade.score.verdict for t in store.trials(run_id)}
    assert verdicts == {f"text-{i}": "pass" for i in range(4)} | {"twin-rmsnorm": "pass", "twin-softmax": "pass"}


def test_a_node_killed_mid_task_is_retried_elsewhere_and_each_trial_graded_once(cluster, tmp_path) -> None:
    """A fourth node joins; once a grading step is running on it, it is killed (no grace).
    Ray reruns that step on the nodes left; every trial is graded exactly once."""
    import threading
    import time

    from harness.executors.ray_executor import RayExecutor

    cold = tmp_path / "doomed-cache"  # its own compile cache: its steps compile, so they last
    doomed = cluster[0].add_node(**timing_node(env_vars={"KERNELGRADE_HOME": str(tmp_path / "doomed-home"),
                                                         "KERNELGRADE_CACHE": str(cold)}))
    cluster[0].wait_for_nodes()
    store = Store()
    run_id = store_run(store, [(twin_case(op), as_answer(REFS / op)) for op in ("rmsnorm", "softmax", "matmul")],
                       runs=2)
    seen: dict[str, float] = {}

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if any((cold / "executor" / "work").glob("grade-*")):
                seen["at"] = time.monotonic()
                cluster[0].remove_node(doomed, allow_graceful=False)
                return
            time.sleep(0.05)

    with RayExecutor(address=cluster[0].address, level="compile", device="cpu") as executor:
        assert doomed.node_id in executor.view.usable_ids
        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        outcomes = []
        result = regrade(store, run_id, executor, level="compile", device="cpu", options=OPTIONS,
                         on_outcome=outcomes.append)
        killer.join(timeout=5)
        assert "at" in seen, "no step ever started on the fourth node"
    assert result.graded == 6 and not result.failed, result.failed
    assert len(outcomes) == 6 and all(len(ids) == 1 for ids in _grade_rows(store, run_id).values())
    assert {t.grade.score.verdict for t in store.trials(run_id)} == {"pass"}


def test_eval_through_ray_calls_the_model_here_and_grades_on_the_nodes(cluster, tmp_path) -> None:
    """`eval --executor ray`: the model server is reached from the driver only (one request per
    trial); the answers are graded on the cluster's nodes; the driver records every grade."""
    import json

    from harness.executors import ExecutorSettings
    from harness.workflows.evaluate import EvalOptions, Progress, execute, start_eval
    from tests.fakes.openai_server import FakeOpenAIServer

    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"input": "Which capability string for H100?",
                                            "expected": {"contains": ["9.0"]}}]}))
    skill = Path(__file__).resolve().parents[1] / "fixtures/skills/valid-skill"
    store = Store()
    lines: list[str] = []
    with FakeOpenAIServer() as server:
        run_id = start_eval(EvalOptions(skill_dir=skill, cases_path=cases, models=["fake-model"], runs=2,
                                        base_url=server.base_url, level="text"), store)
        status = execute(run_id, store, Progress(on_status=lines.append),
                         executor=ExecutorSettings(executor="ray", ray_address=cluster[0].address))
        assert status == "finished" and len(server.requests) == 4
    trials = store.trials(run_id)
    workers = {n.node_id for n in cluster[1][:2]}
    assert all(t.grade.where["executor"] == "ray" and t.grade.where["node_id"] in workers for t in trials)
    assert sorted(t.grade.score.verdict for t in trials if t.arm == "with_skill") == ["pass", "pass"]
    assert lines and lines[-1].startswith("ray ")


def test_the_benchmark_measures_ray_overhead_per_task(cluster, executor) -> None:
    """benchmarks/executor.py's overhead figure on this cluster: one figure per task, each the
    driver's wall time less the step's own time (not asserted against the 50 ms target: this
    machine's cores are shared with other jobs)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "executor.py"
    spec = importlib.util.spec_from_file_location("bench_executor", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    figures = bench.ray_overhead(cluster[0].address, 5)
    assert len(figures) == 5 and all(0 < ms < 10_000 for ms in figures), figures


def test_check_through_ray_from_the_command_line(cluster, executor, capsys) -> None:
    """`kernelgrade check PROJECT --executor ray`: the same checks and statuses as locally."""
    import json

    from harness.cli.main import main

    args = ["check", str(REFS / "rmsnorm"), "--level", "compile", "--device", "cpu", "--json"]
    found = []
    for extra in ([], ["--executor", "ray", "--ray-address", cluster[0].address]):
        assert main(args + extra) == 0
        found.append({r["name"]: r["status"] for r in json.loads(capsys.readouterr().out)["results"]})
    assert found[0] == found[1] and found[1]["compile"] == "pass", found
