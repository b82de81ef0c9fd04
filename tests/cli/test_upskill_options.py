"""upskill's eval options typed with `kernelgrade eval` (--runs-dir, --log-runs/--no-log-runs,
--test-gen-model). Models are the OpenAI-protocol FIXTURE server (tests/fakes/openai_server.py):
scripted answers, never reported as model results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.store.db import Store
from harness.workflows.upskill_import import read_batch
from tests.fakes.openai_server import FakeOpenAIServer, default_responder

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"
#: What the FIXTURE case writer answers: two cases the default responder passes only with the skill.
WRITTEN_CASES = {"cases": [
    {"input": "Which cuda-capabilities value targets H100?", "expected": {"contains": ["9.0"]}},
    {"input": "What goes in build.toml for an H100 kernel?", "expected": {"contains": ["9.0"]}},
]}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ./runs and cases/<name>.json are looked for here


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [{"input": "Which capability for H100?", "expected": {"contains": "9.0"}}]}))
    return path


def _eval(server: FakeOpenAIServer, skill: Path, *extra: str) -> int:
    return main(["eval", str(skill), "-m", "fake-model", "--base-url", server.base_url, "--level", "text", *extra])


def test_runs_dir_writes_upskill_logs_that_read_back(tmp_path: Path, cases_file: Path, capsys) -> None:
    logs = tmp_path / "logs"
    with FakeOpenAIServer() as server:
        assert _eval(server, SKILL, "-t", str(cases_file), "--runs", "2", "--runs-dir", str(logs)) == 0
    (batch,) = list(logs.iterdir())
    assert f"upskill run logs: {batch}" in capsys.readouterr().err
    runs = read_batch(batch)
    # one model x 2 runs x 2 arms, each baseline just before its with-skill pair
    assert [r["run_type"] for r in runs] == ["baseline", "with_skill"] * 2
    assert [r["passed"] for r in runs] == [False, True] * 2  # the fixture says 9.0 only with the skill
    assert all(r["assertions_total"] == 1 and r["metadata"]["model"] == "fake-model" for r in runs)
    summary = json.loads((batch / "batch_summary.json").read_text())
    assert (summary["total_runs"], summary["passed_runs"]) == (4, 2)
    (run,) = Store().list_runs()
    assert batch.name.endswith(run["id"])


def test_log_runs_alone_writes_to_dot_runs_and_no_log_runs_writes_nothing(tmp_path: Path, cases_file: Path,
                                                                         capsys) -> None:
    with FakeOpenAIServer() as server:
        assert _eval(server, SKILL, "-t", str(cases_file), "--no-log-runs", "--runs-dir", str(tmp_path / "d")) == 0
        assert _eval(server, SKILL, "-t", str(cases_file)) == 0  # the default: no logs
        assert not (tmp_path / "d").exists() and not (tmp_path / "runs").exists()
        assert "upskill run logs" not in capsys.readouterr().err
        assert len(Store().list_runs()) == 2  # the store keeps every run anyway
        assert _eval(server, SKILL, "-t", str(cases_file), "--log-runs") == 0
    (batch,) = list((tmp_path / "runs").iterdir())
    assert len(read_batch(batch)) == 2


def test_test_gen_model_writes_cases_when_there_are_none_and_they_are_used(tmp_path: Path, capsys) -> None:
    skill = tmp_path / "valid-skill"
    shutil.copytree(SKILL, skill)
    case_requests: list[dict] = []

    def responder(body: dict) -> str:
        if body["model"] == "case-writer":
            case_requests.append(body)
            return json.dumps(WRITTEN_CASES)
        return default_responder(body)

    with FakeOpenAIServer(responder) as server:
        assert _eval(server, skill) == 2  # without --test-gen-model: today's error
        assert "no cases found" in capsys.readouterr().err and not case_requests
        assert _eval(server, skill, "--test-gen-model", "case-writer") == 0
    err = capsys.readouterr().err
    written = skill / "cases.json"
    assert f"cases written by case-writer: {written}" in err
    (request,) = case_requests
    user = request["messages"][-1]["content"]
    assert "valid-skill: A small fixture skill for tests." in user  # the name and description ...
    assert "Read [the details]" not in user  # ... not the body being judged
    saved = json.loads(written.read_text())
    assert [c["input"] for c in saved["cases"]] == [c["input"] for c in WRITTEN_CASES["cases"]]
    assert saved["generated"]["model"] == "case-writer"
    (run,) = Store().list_runs()
    stored = Store().get_run(run["id"])
    assert [c["input"] for c in stored.cases] == [c["input"] for c in WRITTEN_CASES["cases"]]
    assert len(Store().trials(run["id"])) == 4  # 2 generated cases x 2 arms


def test_test_gen_model_is_not_needed_when_cases_are_found(tmp_path: Path, cases_file: Path, capsys) -> None:
    skill = tmp_path / "valid-skill"
    shutil.copytree(SKILL, skill)
    shutil.copy(cases_file, skill / "cases.json")
    models: list[str] = []

    def responder(body: dict) -> str:
        models.append(body["model"])
        return default_responder(body)

    with FakeOpenAIServer(responder) as server:
        assert _eval(server, skill, "--test-gen-model", "case-writer") == 0
    assert f"--test-gen-model case-writer: not needed, cases found: {skill / 'cases.json'}" in capsys.readouterr().err
    assert "case-writer" not in models and len(models) == 2
