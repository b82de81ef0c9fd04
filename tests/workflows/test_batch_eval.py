"""eval --batch (issue 20) against both providers' batch endpoints (tests/fakes/batch_servers.py)
over the real SDKs: submit, poll, results stored and graded, partial failure and expiry as
errors that --resume resubmits, re-attaching after a kill (-9 between submit and results, and
between the provider accepting a batch and its id being stored), batch prices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.common.config import Config
from harness.common.errors import UserError
from harness.store.batches import BatchStore
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.fakes.batch_servers import FakeAnthropicBatches, FakeOpenAIBatches

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"
MODELS = {"anthropic": "anthropic:claude-sonnet-4-5", "openai": "openai:gpt-4.1"}
FAKES = {"anthropic": FakeAnthropicBatches, "openai": FakeOpenAIBatches}


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch) -> None:
    monkeypatch.setenv("KERNELGRADE_BATCH_POLL_S", "0.01")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("OPENAI_API_KEY", "k")


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [
        {"id": "toml", "input": "Create a build.toml for a CUDA kernel targeting H100", "expected": {"contains": "9.0"}},
        {"id": "cap", "input": "Which capability string for H100?", "expected": {"contains": "9.0"}},
    ]}))
    return path


def _serve(provider: str, monkeypatch, **script):
    server = FAKES[provider](**script)
    server.__enter__()
    monkeypatch.setenv("ANTHROPIC_BASE_URL" if provider == "anthropic" else "OPENAI_BASE_URL", server.base_url)
    return server


def _start(provider: str, cases_file: Path, **kw) -> tuple[Store, str]:
    store = Store()
    run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=[MODELS[provider]], level="text",
                                    batch=True, **kw), store)
    return store, run_id


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_batch_is_submitted_polled_and_stored(provider: str, cases_file: Path, monkeypatch) -> None:
    server = _serve(provider, monkeypatch, polls_before_end=2)
    try:
        store, run_id = _start(provider, cases_file)
        assert store.get_run(run_id).mode == "batch"
        assert execute(run_id, store) == "finished"
    finally:
        server.__exit__()
    assert len(server.batches) == 1 and server.polls >= 3
    trials = store.trials(run_id)
    assert sorted(server.submitted) == sorted(f"trial-{t.id}" for t in trials)
    assert all(t.status == "answered" and t.completion.batch and t.grade is not None for t in trials)
    verdicts = {(t.case_id, t.arm): t.grade.score.verdict for t in trials}
    assert verdicts[("toml", "with_skill")] == "pass" and verdicts[("toml", "baseline")] == "fail"
    assert all(t.prompt and t.request["batch"] for t in trials)
    # the items carry what a direct call would: prompt text and cache marking
    body = next(iter(server.batches.values())).requests[0]["body"]
    assert body["model"] == MODELS[provider].split(":")[1]
    if provider == "anthropic":
        assert body["system"][0]["type"] == "text" and any("cache_control" in b for b in
                                                           body["system"] + body["messages"][0]["content"])
    else:
        assert body["prompt_cache_key"].startswith("kg-")
    # reported at batch prices: half the direct price
    config = Config()
    for t in trials:
        direct = t.completion.model_copy(update={"batch": False})
        assert config.completion_cost_usd(t.completion) == pytest.approx(0.5 * config.completion_cost_usd(direct))
    assert execute(run_id, store) == "finished" and len(server.batches) == 1  # nothing left to submit


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_errored_and_expired_items_become_errors_that_resume_resubmits(provider: str, cases_file: Path,
                                                                      monkeypatch) -> None:
    store = Store()
    server = _serve(provider, monkeypatch)
    try:
        store, run_id = _start(provider, cases_file)
        ids = sorted(t.id for t in store.trials(run_id))
        server.errored, server.expired = {f"trial-{ids[0]}"}, {f"trial-{ids[1]}"}
        assert execute(run_id, store) == "finished"
        errors = {t.id: t.error for t in store.trials(run_id) if t.status == "error"}
        assert set(errors) == {ids[0], ids[1]}
        assert "errored" in errors[ids[0]] or "HTTP 400" in errors[ids[0]]
        assert "expired" in errors[ids[1]]
        assert execute(run_id, store) == "finished"  # --resume
    finally:
        server.__exit__()
    assert len(server.batches) == 2
    assert Counter(server.submitted)[f"trial-{ids[2]}"] == 1  # answered trials are never sent again
    assert sorted(next(reversed(server.batches.values())).requests[i]["custom_id"] for i in range(2)) == \
        sorted([f"trial-{ids[0]}", f"trial-{ids[1]}"])
    assert all(t.status == "answered" and t.grade for t in store.trials(run_id))


def test_a_batch_that_expires_whole_leaves_every_trial_to_resume(cases_file: Path, monkeypatch) -> None:
    server = _serve("anthropic", monkeypatch, expire_all=True)
    try:
        store, run_id = _start("anthropic", cases_file)
        assert execute(run_id, store) == "finished"
        assert all(t.status == "error" and "expired" in t.error for t in store.trials(run_id))
        server.expire_all = False
        assert execute(run_id, store) == "finished"
    finally:
        server.__exit__()
    assert all(t.status == "answered" for t in store.trials(run_id))


def test_an_openai_batch_that_fails_validation_names_why(cases_file: Path, monkeypatch) -> None:
    server = _serve("openai", monkeypatch, fail_batch="model not available for batch")
    try:
        store, run_id = _start("openai", cases_file)
        assert execute(run_id, store) == "finished"
    finally:
        server.__exit__()
    assert all(t.status == "error" and "model not available for batch" in t.error for t in store.trials(run_id))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_killed_after_the_provider_accepted_before_the_id_was_stored(provider: str, cases_file: Path,
                                                                    monkeypatch) -> None:
    server = _serve(provider, monkeypatch)
    try:
        store, run_id = _start(provider, cases_file)
        real_attach = BatchStore.attach

        def die(self, row, batch_id):
            raise KeyboardInterrupt  # the process ends between the provider's answer and the store's write

        monkeypatch.setattr(BatchStore, "attach", die)
        with pytest.raises(KeyboardInterrupt):
            execute(run_id, store)
        assert len(server.batches) == 1 and store.get_run(run_id).status == "interrupted"
        monkeypatch.setattr(BatchStore, "attach", real_attach)
        assert execute(run_id, store) == "finished"  # --resume finds the batch by its token
    finally:
        server.__exit__()
    assert len(server.batches) == 1 and len(server.submitted) == len(set(server.submitted)) == 4
    assert all(t.status == "answered" for t in store.trials(run_id))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_kill_9_between_submit_and_results_then_resume(provider: str, cases_file: Path, monkeypatch,
                                                       tmp_path: Path) -> None:
    import threading

    hold = threading.Event()
    server = _serve(provider, monkeypatch, hold=hold)
    try:
        cli = [sys.executable, "-m", "harness.cli.main", "eval", str(SKILL), "--cases", str(cases_file),
               "-m", MODELS[provider], "--batch", "--level", "text"]
        proc = subprocess.Popen(cli, cwd=REPO, env=os.environ | {"KERNELGRADE_DOTENV": "0"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while server.polls < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # submitted, id stored (polling only starts after), results not out
        assert server.polls >= 2, proc.stderr.read() if proc.poll() is not None else "no poll in 60 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        hold.set()
        store = Store()
        (run,) = [r for r in store.list_runs() if r["kind"] == "eval"]
        assert store.get_run(run["id"]).status == "running"  # killed: no chance to say otherwise
        assert execute(run["id"], store) == "finished"
    finally:
        server.__exit__()
    assert len(server.batches) == 1 and len(server.submitted) == 4
    assert all(t.status == "answered" and t.grade for t in store.trials(run["id"]))


def test_batch_mode_refuses_what_it_cannot_do(cases_file: Path) -> None:
    with pytest.raises(UserError, match="Anthropic or OpenAI"):
        start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=["m"], base_url="http://x/v1",
                               level="text", batch=True), Store())
    with pytest.raises(UserError, match="max-cost"):
        _start("anthropic", cases_file, max_cost=1.0)
