"""`runs` as eval tools have it (issue 19 items 5, 7, 9, 11): upskill run logs import and compare
beside kernelgrade runs; filters, CSV and JSON files, delete; exit codes 4 and 5; an inspect_ai
log written with inspect_ai's API and read back with its reader. Fixtures: tests/fixtures/upskill/
(upskill's run-log format, written for kernelgrade) and scripted OpenAI-protocol servers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.store.db import Store
from harness.workflows.evaluate import execute, start_eval
from harness.cli.eval import eval_options
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"
BATCH = REPO / "tests/fixtures/upskill/runs/2026_11_30_14_05"


def _eval(cases_file: Path, models=("haiku",), runs: int = 2) -> str:
    """A finished run; the scripted model answers 9.0 only with the skill."""
    store = Store()
    with FakeOpenAIServer() as server:
        opts = eval_options(SKILL, cases=cases_file, models=list(models), runs=runs, base_url=server.base_url,
                            level="text")
        run_id = start_eval(opts, store)
        assert execute(run_id, store) == "finished"
    return run_id


def test_upskill_run_logs_import_and_show_beside_a_new_run(cases_file: Path, capsys) -> None:
    assert main(["runs", "import", str(BATCH.parent)]) == 0
    imported = capsys.readouterr().out.split("imported ")[1].strip()
    store = Store()
    run = store.get_run(imported)
    assert run.config["imported_from"] == "upskill" and run.skill == {"name": "kernel-notes"}
    trials = store.trials(imported)
    # run_1 baseline 1/2, run_2 with skill 2/2, run_3 with skill 1/2, run_4 never finished.
    got = sorted((t.arm, t.run_index, t.status, t.grade.score.verdict if t.grade else None) for t in trials)
    assert got == [("baseline", 0, "answered", "fail"), ("with_skill", 0, "answered", "pass"),
                   ("with_skill", 1, "answered", "fail"), ("with_skill", 2, "error", None)]
    first = next(t for t in trials if t.arm == "baseline")
    assert (first.completion.input_tokens, first.completion.output_tokens) == (210, 90)
    assert (first.grade.score.assertions_passed, first.grade.score.assertions_total) == (1, 2)
    assert main(["runs", "import", str(BATCH)]) == 2  # the same batch again: refused, one line
    assert "already imported" in capsys.readouterr().err

    assert main(["runs", "show", imported]) == 0
    out = capsys.readouterr().out
    assert "imported from upskill" in out and "every case passed" in out

    new = _eval(cases_file)
    assert main(["runs", "compare", imported, new, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["basis"] == "run"
    rows = {r["arm"]: r for r in result["rows"]}
    # upskill: baseline 0/1 runs all-passed, with skill 1/2; kernelgrade per run: baseline 0/2, with skill 2/2.
    assert (rows["baseline"]["pass_a"], rows["baseline"]["pass_b"]) == (0.0, 0.0)
    assert (rows["with_skill"]["pass_a"], rows["with_skill"]["pass_b"]) == (0.5, 1.0)
    assert rows["with_skill"]["verdict"] == "per-run rates, not paired"
    assert main(["runs", "compare", imported, new]) == 0
    assert "compared per run" in capsys.readouterr().out
    assert main(["rescore", imported, "--level", "text"]) == 2  # no answers to grade
    assert main(["runs", "import", str(REPO / "tests/fixtures/skills")]) == 2


def test_filters_csv_json_files_and_delete(cases_file: Path, tmp_path: Path, capsys) -> None:
    a = _eval(cases_file, models=("haiku",), runs=1)
    b = _eval(cases_file, models=("sonnet",), runs=1)
    store = Store()
    store.execute("UPDATE runs SET created='2026-01-01T00:00:00+00:00' WHERE id=?", (a,))

    def listed(*args: str) -> list[str]:
        assert main(["runs", *args, "--json"]) == 0
        return [r["id"] for r in json.loads(capsys.readouterr().out)]

    assert listed() == [b, a]
    assert listed("--model", "haiku") == [a] and listed("-m", "sonnet") == [b]
    assert listed("--skill", "valid-skill") == [b, a] and listed("--skill", "other") == []
    assert listed("--since", "7d") == [b] and listed("--since", "2025-12-31") == [b, a]
    assert main(["runs", "--since", "last tuesday"]) == 2

    assert main(["runs", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in rows] == [b, a] and rows[0]["models"] == "sonnet" and rows[0]["trials"] == "4"
    out_csv, out_json = tmp_path / "t.csv", tmp_path / "r.json"
    assert main(["runs", "show", b, "--csv", str(out_csv), "--json", str(out_json)]) == 0
    shown = capsys.readouterr().out
    assert "Results per model and arm" in shown  # files written, the table still printed
    trials = list(csv.DictReader(out_csv.open()))
    assert len(trials) == 4 and {t["verdict"] for t in trials} == {"pass", "fail"}
    assert json.loads(out_json.read_text())["run"]["run_id"] == b

    art = Path(store.path).parent / "artifacts" / a
    art.mkdir(parents=True, exist_ok=True)
    assert main(["runs", "delete", a]) == 0
    assert capsys.readouterr().out.strip() == f"deleted {a}"
    assert listed() == [b] and not art.exists() and not store.trials(a)
    assert main(["runs", "delete", a]) == 2


def test_exit_codes_nothing_graded_4_and_max_cost_5(cases_file: Path, monkeypatch) -> None:
    from harness.common import config as config_mod

    assert main(["eval", str(SKILL), "-t", str(cases_file), "-m", "m", "--base-url", "http://127.0.0.1:9/v1",
                 "--level", "text", "--timeout", "2"]) == 4
    monkeypatch.setattr(config_mod, "DEFAULT_PRICES", {"fake-model": config_mod.Price(input=1e6, output=1e6)})
    with FakeOpenAIServer() as server:
        code = main(["eval", str(SKILL), "-t", str(cases_file), "-m", "fake-model", "--base-url", server.base_url,
                     "--level", "text", "--max-cost", "50", "--runs", "4", "-j", "1", "--fail-under", "0"])
    assert code == 5  # before the gate: the run is unfinished


def test_inspect_export_is_read_back_by_inspect_ai(cases_file: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("inspect_ai")
    from inspect_ai.log import read_eval_log

    run_id = _eval(cases_file, runs=2)
    assert main(["runs", "export", run_id, "--format", "inspect", "-o", str(tmp_path / "logs")]) == 0
    paths = sorted((tmp_path / "logs").glob("*.eval"))
    assert [p.name.rsplit("_", 2)[-2:] for p in paths] == [["haiku", "baseline.eval"], ["with", "skill.eval"]]
    log = read_eval_log(str(paths[1]))
    assert log.status == "success" and log.eval.model == "haiku" and log.eval.metadata["arm"] == "with_skill"
    assert len(log.samples) == 4 and {s.id for s in log.samples} == {"cap", "toml"}
    assert {s.epoch for s in log.samples} == {1, 2}
    sample = next(s for s in log.samples if s.id == "cap")
    assert sample.scores["verdict"].value == "C" and sample.target == ["9.0"]
    markers = sample.scores["check_markers"]
    assert markers.value == "pass" and markers.metadata["metrics"]["assertions_total"] == 1
    assert "9.0" in sample.output.completion and sample.messages[-1].role == "assistant"
    assert log.results.scores[0].metrics["accuracy"].value == 1.0
    baseline = read_eval_log(str(paths[0]))
    assert baseline.results.scores[0].metrics["accuracy"].value == 0.0
