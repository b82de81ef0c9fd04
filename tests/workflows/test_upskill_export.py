"""A stored run written as upskill's run logs (harness/workflows/upskill_export.py), over runs made
against the labelled fixture OpenAI-protocol server, and read back by kernelgrade's reader of
upskill's logs (harness/workflows/upskill_import.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.common.errors import UserError
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from harness.workflows.upskill_export import write_upskill_logs
from harness.workflows.upskill_import import import_upskill, read_batch
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"


def _run(tmp_path: Path, server: FakeOpenAIServer, *, cases: list[dict], **kw) -> tuple[Store, str]:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": cases}))
    store = Store()
    run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=path, base_url=server.base_url, level="text",
                                    concurrency=1, **kw), store)
    execute(run_id, store)
    return store, run_id


def test_each_pass_of_a_model_over_the_cases_is_one_upskill_run(tmp_path: Path) -> None:
    # The fixture answers '9.0' only with the skill: case 0 passes with it, case 1 never does.
    cases = [{"input": "capability?", "expected": {"contains": "9.0"}},
             {"input": "arch?", "expected": {"contains": ["9.0", "never said"]}}]
    with FakeOpenAIServer() as server:
        store, run_id = _run(tmp_path, server, cases=cases, models=["m-a", "m-b"], runs=2)
    batch = write_upskill_logs(store, run_id, tmp_path / "runs")
    runs = read_batch(batch)
    assert [(r["metadata"]["model"], r["run_type"], r["metadata"]["run_number"]) for r in runs] == [
        ("m-a", "baseline", 1), ("m-a", "with_skill", 2), ("m-a", "baseline", 3), ("m-a", "with_skill", 4),
        ("m-b", "baseline", 5), ("m-b", "with_skill", 6), ("m-b", "baseline", 7), ("m-b", "with_skill", 8)]
    for r in runs:
        # assertions summed over the two cases; with the skill 2 of 3 markers are said
        assert (r["assertions_passed"], r["assertions_total"]) == ((2, 3) if r["run_type"] == "with_skill" else (0, 3))
        assert r["passed"] is False  # upskill's run passes only when every case passed
        assert r["skill_name"] == "valid-skill" and r["error_message"] is None
        assert r["stats"]["turns"] == 2 and r["stats"]["total_tokens"] == (r["stats"]["input_tokens"]
                                                                          + r["stats"]["output_tokens"]) > 0
        meta = json.loads((Path(r["folder"]) / "run_metadata.json").read_text())
        assert meta == r["metadata"] and meta["batch_id"] == batch.name
    summary = json.loads((batch / "batch_summary.json").read_text())
    assert (summary["total_runs"], summary["passed_runs"], len(summary["results"])) == (8, 0, 8)
    # Read back as a run beside kernelgrade's own: one trial per upskill run, dated by when upskill
    # says its first run was made, not by the import.
    first = batch / "run_1" / "run_result.json"
    first.write_text(json.dumps(json.loads(first.read_text()) | {"metadata": runs[0]["metadata"] | {
        "timestamp": "2025-01-02T03:04:05"}}))
    (imported,) = import_upskill(tmp_path / "runs")
    assert Store().get_run(imported).created == "2025-01-02T03:04:05"
    trials = Store().trials(imported)
    assert sorted((t.model, t.arm, t.grade.score.assertions_passed) for t in trials) == sorted(
        (m, arm, 2 if arm == "with_skill" else 0) for m in ("m-a", "m-b") for arm in ("baseline", "with_skill")
        for _ in range(2))


def test_a_run_where_every_case_passed_passes_and_errors_are_kept(tmp_path: Path) -> None:
    cases = [{"input": "capability?", "expected": {"contains": "9.0"}}]
    with FakeOpenAIServer() as server:
        store, run_id = _run(tmp_path, server, cases=cases, models=["m"], no_baseline=True)
    (ok,) = read_batch(write_upskill_logs(store, run_id, tmp_path / "ok"))
    assert ok["passed"] is True and (ok["assertions_passed"], ok["assertions_total"]) == (1, 1)

    with FakeOpenAIServer(fail_first=100, fail_status=400) as server:
        store, run_id = _run(tmp_path, server, cases=cases, models=["m"], no_baseline=True, attempts=1)
    (failed,) = read_batch(write_upskill_logs(store, run_id, tmp_path / "err"))
    assert failed["passed"] is False and failed["assertions_total"] == 0
    assert failed["error_message"].startswith("1 of 1 cases errored; first: bad_request")


def test_refuses_to_mix_two_writes_in_one_batch_folder(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        store, run_id = _run(tmp_path, server, cases=[{"input": "q", "expected": {"contains": "9.0"}}],
                             models=["m"])
    write_upskill_logs(store, run_id, tmp_path / "runs")
    with pytest.raises(UserError, match="already written"):
        write_upskill_logs(store, run_id, tmp_path / "runs")
