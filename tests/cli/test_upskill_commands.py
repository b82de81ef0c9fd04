"""upskill's command lines with `kernelgrade` in place of `upskill`: `benchmark`, `runs -d`,
`runs --metric` and `runs export --format upskill`. Models are the scripted OpenAI-protocol
FIXTURE server (tests/fakes/openai_server.py); nothing here is a model result."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.cli.eval import eval_options
from harness.cli.main import main
from harness.store.db import Store
from harness.workflows.evaluate import execute, start_eval
from harness.workflows.upskill_export import write_upskill_logs
from harness.workflows.upskill_import import read_batch
from tests.fakes.openai_server import FakeOpenAIServer, default_responder

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"


def _eval(cases_file: Path, model: str = "fake-model", responder=None, runs: int = 1) -> str:
    """A finished eval run (baseline and with skill) against the scripted server."""
    store = Store()
    with (FakeOpenAIServer(responder) if responder else FakeOpenAIServer()) as server:
        opts = eval_options(SKILL, cases=cases_file, models=[model], runs=runs, base_url=server.base_url,
                            level="text")
        run_id = start_eval(opts, store)
        assert execute(run_id, store) == "finished"
    return run_id


def _listed(capsys, *args: str) -> list[dict]:
    assert main(["runs", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_benchmark_runs_with_skill_only_per_model_and_writes_upskill_logs(cases_file: Path, tmp_path: Path,
                                                                           capsys) -> None:
    out_dir = tmp_path / "bench-logs"
    with FakeOpenAIServer() as server:
        code = main(["benchmark", str(SKILL), "-m", "fake-a", "-m", "fake-b", "--runs", "2", "-t", str(cases_file),
                     "--test-gen-model", "opus", "-o", str(out_dir), "--base-url", server.base_url,
                     "--level", "text"])
        requests = list(server.requests)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "--test-gen-model opus: not needed" in captured.err and str(cases_file) in captured.err
    assert "Results per model and arm" in captured.out  # eval's report

    store = Store()
    (run,) = store.list_runs()
    trials = store.trials(run["id"])
    assert {t.arm for t in trials} == {"with_skill"}  # no baseline
    assert sorted((t.model, t.run_index) for t in trials if t.case_id == "cap") == \
        [("fake-a", 0), ("fake-a", 1), ("fake-b", 0), ("fake-b", 1)]
    assert len(trials) == len(requests) == 2 * 2 * 2  # cases x models x runs
    assert all("<skill>" in r["messages"][-1]["content"] for r in requests)
    assert all(t.grade.score.verdict == "pass" for t in trials)

    (batch,) = [p for p in out_dir.iterdir() if p.is_dir()]
    assert run["id"] in batch.name and str(batch) in captured.err
    results = read_batch(batch)
    assert [r["metadata"]["model"] for r in results] == ["fake-a", "fake-a", "fake-b", "fake-b"]
    assert {r["run_type"] for r in results} == {"with_skill"}
    assert all(r["passed"] and (r["assertions_passed"], r["assertions_total"]) == (2, 2) for r in results)
    summary = json.loads((batch / "batch_summary.json").read_text())
    assert (summary["total_runs"], summary["passed_runs"]) == (4, 4)


def test_benchmark_defaults_to_three_runs_and_v_adds_case_rows(cases_file: Path, capsys) -> None:
    with FakeOpenAIServer() as server:
        code = main(["benchmark", str(SKILL), "-m", "fake-model", "-t", str(cases_file), "-v",
                     "--base-url", server.base_url, "--level", "text"])
    out = capsys.readouterr().out
    assert code == 0
    (run,) = Store().list_runs()
    assert run["trials"] == 2 * 3 and Store().get_run(run["id"]).config["runs"] == 3
    assert "Per case" in out and "cap Which capability" in out


def test_benchmark_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert main(["benchmark", str(SKILL)]) == 2  # -m is required, as in upskill
    assert "--model" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # no cases/valid-skill.json here, and the skill has no tests of its own
    assert main(["benchmark", str(SKILL), "-m", "fake-model"]) == 2  # no cases, no --test-gen-model
    assert "no cases found" in capsys.readouterr().err
    assert not Store().list_runs()


def test_benchmark_test_gen_model_writes_cases_when_there_are_none(tmp_path: Path, capsys) -> None:
    skill = tmp_path / "valid-skill"
    shutil.copytree(SKILL, skill)
    written = {"cases": [{"input": "Which cuda-capabilities value targets H100?", "expected": {"contains": ["9.0"]}}]}
    asked: list[str] = []

    def responder(body: dict) -> str:
        asked.append(body["model"])
        return json.dumps(written) if body["model"] == "case-writer" else default_responder(body)

    with FakeOpenAIServer(responder) as server:
        code = main(["benchmark", str(skill), "-m", "fake-model", "--runs", "1", "--test-gen-model", "case-writer",
                     "--base-url", server.base_url, "--level", "text"])
    assert code == 0
    assert f"cases written by case-writer: {skill / 'cases.json'}" in capsys.readouterr().err
    assert asked == ["case-writer", "fake-model"]  # the cases first, then one with-skill trial
    (run,) = Store().list_runs()
    assert [c["input"] for c in Store().get_run(run["id"]).cases] == [written["cases"][0]["input"]]


def test_runs_dir_lists_upskill_logs_without_importing(cases_file: Path, tmp_path: Path, capsys) -> None:
    run_id = _eval(cases_file, model="haiku")
    runs_dir = tmp_path / "runs"
    write_upskill_logs(Store(), run_id, runs_dir)
    home = os.environ["KERNELGRADE_HOME"]
    before = [r["id"] for r in Store().list_runs()]

    (row,) = _listed(capsys, "-d", str(runs_dir))
    assert row["id"].startswith("upskill-") and row["source"] == "upskill" and row["models"] == "haiku"
    assert (row["skill"], row["trials"]) == ("valid-skill", 2)  # one upskill run per arm
    assert row["created"] == Store().get_run(run_id).created  # dated by upskill's timestamp
    assert _listed(capsys, "-d", str(runs_dir), "-m", "sonnet") == []
    assert len(_listed(capsys, "-d", str(runs_dir), "-m", "sonnet", "-m", "haiku")) == 1
    assert len(_listed(capsys, "-d", str(runs_dir), "-s", "valid-skill")) == 1
    assert _listed(capsys, "-d", str(runs_dir), "--skill", "other") == []
    assert _listed(capsys, "-d", str(runs_dir), "--since", "2099-01-01") == []
    assert main(["runs", "-d", str(runs_dir)]) == 0
    assert f"upskill runs in {runs_dir} (not imported)" in " ".join(capsys.readouterr().out.split())

    assert os.environ["KERNELGRADE_HOME"] == home
    assert [r["id"] for r in Store().list_runs()] == before == [run_id]  # nothing imported into the store
    assert main(["runs", "-d", str(tmp_path / "nothing")]) == 2
    assert main(["runs", "-d", str(runs_dir), "show", run_id]) == 2


def test_metric_adds_the_figure_and_sorts_by_it(cases_file: Path, capsys) -> None:
    wordy = _eval(cases_file, responder=lambda body: "The capability is 9.0. " + "padding " * 200)
    terse = _eval(cases_file, responder=lambda body: "sm_90")
    store = Store()
    store.execute("UPDATE runs SET created='2026-01-01T00:00:00+00:00' WHERE id=?", (wordy,))
    assert [r["id"] for r in _listed(capsys)] == [terse, wordy]  # newest first, no figures
    assert "pass_rate_with_skill" not in _listed(capsys)[0]

    by_success = _listed(capsys, "--metric", "success")
    assert [r["id"] for r in by_success] == [wordy, terse]  # highest with-skill pass rate first
    assert [(r["pass_rate_baseline"], r["pass_rate_with_skill"]) for r in by_success] == [(1.0, 1.0), (0.0, 0.0)]
    by_tokens = _listed(capsys, "--metric", "tokens")
    assert [r["id"] for r in by_tokens] == [terse, wordy]  # fewest tokens first
    assert by_tokens[0]["tokens_with_skill"] + 150 < by_tokens[1]["tokens_with_skill"]

    assert main(["runs", "--metric", "tokens"]) == 0
    out = capsys.readouterr().out
    assert "tokens/trial" in out and f"{by_tokens[1]['tokens_baseline']:,} -> " in out
    assert main(["runs", "--metric", "success", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("pass_rate_baseline,pass_rate_with_skill,tokens_baseline,tokens_with_skill")
    assert lines[1].startswith(wordy)
    assert main(["runs", "--metric", "speed"]) == 2


def test_runs_export_format_upskill(cases_file: Path, tmp_path: Path, capsys) -> None:
    run_id = _eval(cases_file, runs=2)
    out_dir = tmp_path / "exported"
    assert main(["runs", "export", run_id[:12], "--format", "upskill", "-o", str(out_dir)]) == 0
    line = capsys.readouterr().out.strip()
    batch = Path(line.split(" to ", 1)[1])
    assert line.startswith(f"wrote upskill logs of {run_id}") and batch.parent == out_dir
    results = read_batch(batch)
    assert [r["run_type"] for r in results] == ["baseline", "with_skill"] * 2
    assert [r["passed"] for r in results] == [False, True] * 2  # the scripted model says 9.0 only with the skill
    assert main(["runs", "export", run_id, "--format", "upskill", "-o", str(out_dir)]) == 2  # not overwritten
