"""upskill's spellings are aliases (issue 19 item 6): each resolves to the same run as its
kernelgrade spelling. The run's options are captured where `eval` / `generate` would create
the run, so nothing is called."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.common.config import load_config
from harness.common.errors import UserError
from harness.models.registry import resolve
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"
UPSKILL_SKILL = REPO / "tests/fixtures/upskill/kernel-notes"


class Captured(UserError):
    pass


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [{"input": "Which capability for H100?", "expected": {"contains": "9.0"}}]}))
    return path


def _eval_opts(monkeypatch: pytest.MonkeyPatch, *argv: str) -> dict:
    import harness.workflows.evaluate as evaluate

    seen: list = []

    def capture(opts, store):
        seen.append(opts)
        raise Captured("captured")

    monkeypatch.setattr(evaluate, "start_eval", capture)
    assert main(["eval", *argv]) == 2
    (opts,) = seen
    return opts.model_dump(mode="json")


def _generate_opts(monkeypatch: pytest.MonkeyPatch, *argv: str) -> dict:
    import harness.workflows.generate as generate

    seen: list = []

    def capture(opts, store):
        seen.append(opts)
        raise Captured("captured")

    monkeypatch.setattr(generate, "start_generate", capture)
    assert main(["generate", *argv]) == 2
    (opts,) = seen
    return opts.model_dump(mode="json")


@pytest.mark.parametrize("upskill, ours", [
    (["-t", "{cases}"], ["--cases", "{cases}"]),
    (["--tests", "{cases}"], ["-c", "{cases}"]),
    (["-m", "haiku", "-m", "sonnet"], ["--model", "haiku", "--model", "sonnet"]),
    (["-v"], ["--verbose"]),
])
def test_eval_aliases_make_the_same_run(monkeypatch, cases_file: Path, upskill: list[str], ours: list[str]) -> None:
    base = [str(SKILL), "--level", "text", "--cases", str(cases_file)]
    fill = [a.format(cases=cases_file) for a in upskill], [a.format(cases=cases_file) for a in ours]
    assert _eval_opts(monkeypatch, *base, *fill[0]) == _eval_opts(monkeypatch, *base, *fill[1])


def test_no_baseline_runs_the_with_skill_arm_only(cases_file: Path) -> None:
    from harness.store.db import Store
    from harness.workflows.evaluate import start_eval
    from harness.cli.eval import eval_options

    with FakeOpenAIServer() as server:
        opts = eval_options(SKILL, cases=cases_file, models=["fake-model"], runs=2, base_url=server.base_url,
                            level="text", no_baseline=True)
        store = Store()
        run_id = start_eval(opts, store)
    assert {t.arm for t in store.trials(run_id)} == {"with_skill"} and len(store.trials(run_id)) == 2


def test_upskill_skill_folder_needs_no_cases_option(monkeypatch) -> None:
    opts = _eval_opts(monkeypatch, str(UPSKILL_SKILL), "--level", "text", "-m", "haiku")
    assert Path(opts["cases_path"]) == UPSKILL_SKILL / "skill_meta.json"


def test_generate_aliases_make_the_same_run(monkeypatch, tmp_path: Path) -> None:
    common = ["build H100 kernels", "--level", "text"]
    upskill = _generate_opts(monkeypatch, *common, "-m", "sonnet", "--eval-model", "haiku", "-f", str(SKILL),
                             "-o", str(tmp_path / "out" / "my-skill"))
    ours = _generate_opts(monkeypatch, *common, "--teacher", "sonnet", "--student", "haiku", "--from", str(SKILL),
                          "--out-skills", str(tmp_path / "out"), "--name", "my-skill")
    assert upskill == ours


@pytest.mark.parametrize("upskill, ours, base_url", [
    ("anthropic.claude-sonnet-4-5", "anthropic:claude-sonnet-4-5", None),
    ("openai.gpt-4.1", "openai:gpt-4.1", None),
    ("generic.llama3.2:latest", "llama3.2:latest", "http://gpu-box:8080/v1"),
])
def test_upskill_model_ids_resolve_as_kernelgrade_ids(monkeypatch, upskill: str, ours: str, base_url) -> None:
    monkeypatch.setenv("GENERIC_BASE_URL", "http://gpu-box:8080/v1")
    config = load_config()
    a = resolve(upskill, config)
    b = resolve(ours, config, base_url=base_url)
    assert dataclasses.replace(a, name="") == dataclasses.replace(b, name="")


def test_generic_without_base_url_uses_fast_agents_default_and_effort_suffix_is_refused(monkeypatch) -> None:
    monkeypatch.delenv("GENERIC_BASE_URL", raising=False)
    spec = resolve("generic.my-model", load_config())
    assert (spec.provider, spec.model_id, spec.base_url) == ("openai-compat", "my-model", "http://localhost:11434/v1")
    monkeypatch.setenv("GENERIC_API_KEY", "local")
    assert resolve("generic.my-model", load_config()).key_env == "GENERIC_API_KEY"
    with pytest.raises(UserError, match="reasoning-effort suffix"):
        resolve("openai.o3-mini.low", load_config())


def test_list_shows_the_skills_of_a_folder(capsys) -> None:
    assert main(["list", "-d", str(REPO / "tests/fixtures/upskill"), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["kernel-notes"]["tests"] == 2 and rows["kernel-notes"]["references"] == ["references/capabilities.md"]
    assert main(["list", "--dir", str(REPO / "tests/fixtures/upskill"), "-v"]) == 0
    out = capsys.readouterr().out
    assert "kernel-notes" in out and "skill_meta.json (2 test(s))" in out
    assert main(["list", "-d", str(REPO / "no-such-folder")]) == 2


def test_eval_verbose_adds_one_row_per_case(cases_file: Path, capsys) -> None:
    with FakeOpenAIServer() as server:
        code = main(["eval", str(SKILL), "-t", str(cases_file), "-m", "fake-model", "--base-url", server.base_url,
                     "--level", "text", "-v"])
    assert code == 0
    out = capsys.readouterr().out
    from harness.inputs.cases import load_cases

    (case,) = load_cases(cases_file)
    assert "Per case" in out and f"{case.id} Which capability" in out
