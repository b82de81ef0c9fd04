"""The eval workflow end to end against labelled fixtures (scripted clients and a
scripted OpenAI-protocol server), over the real `openai` SDK and real SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tenacity

from tests.prereq import default_sigint
from harness.inputs.cases import parse_cases
from harness.common.errors import UserError
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from harness.models.base import ChatRequest, Completion, ModelCallError
from harness.models.retry import RetryingClient
from harness.prompts.build import SYSTEM_PROMPT, Prompt, build_prompt
from harness.store.db import Store
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [
        {"input": "Create a build.toml for a CUDA kernel targeting H100", "expected": {"contains": "9.0"}},
        {"input": "Which capability string for H100?", "expected": {"contains": ["9.0"], "not_contains": ["sm_90"]}},
    ]}))
    return path


def _point_run_at(store: Store, run_id: str, base_url: str) -> None:
    """The base URL is part of a run's stored options; point the run at a new server."""
    row = store.execute("SELECT config FROM runs WHERE id=?", (run_id,)).fetchone()
    cfg = json.loads(row[0]) | {"base_url": base_url}
    store.execute("UPDATE runs SET config=? WHERE id=?", (json.dumps(cfg), run_id))


def _opts(cases_file: Path, base_url: str, **kw) -> EvalOptions:
    return EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=["fake-model"],
                       base_url=base_url, level="text", **kw)


def test_arms_differ_only_by_the_skill_block() -> None:
    (case,) = parse_cases({"cases": [{"input": "Write an RMSNorm kernel", "expected": {"contains": "9.0"}}]})
    block = "---\nname: x\n---\nUse 9.0."
    base, with_skill = build_prompt(case, None), build_prompt(case, block)
    assert base.system == with_skill.system == SYSTEM_PROMPT
    assert with_skill.user.endswith(base.user)
    prefix = with_skill.user[: -len(base.user)]
    assert block in prefix and "<skill>" in prefix
    assert prefix.replace(block, "") == "Use the following skill when it helps with the task.\n\n<skill>\n\n</skill>\n\n"


def test_kernel_case_prompts_carry_the_same_answer_format_in_both_arms() -> None:
    (case,) = parse_cases({"cases": [{"input": "Write RMSNorm", "kernel": {
        "op": "rmsnorm", "api": "rms_norm(x, weight, eps)", "checks": ["build_toml"]}}]})
    base, with_skill = build_prompt(case, None), build_prompt(case, "SKILL")
    assert "rms_norm" in base.user and with_skill.user.endswith(base.user)


def test_eval_stores_every_trial_and_grades_markers(cases_file: Path) -> None:
    store = Store()
    with FakeOpenAIServer() as server:
        run_id = start_eval(_opts(cases_file, server.base_url, runs=3), store)
        assert execute(run_id, store) == "finished"
        assert len(server.requests) == 2 * 2 * 3  # cases x arms x runs, each a separate call
    trials = store.trials(run_id)
    assert len(trials) == 12 and all(t.status == "answered" for t in trials)
    by_arm = {arm: [t.grade.score.verdict for t in trials if t.arm == arm] for arm in ("baseline", "with_skill")}
    assert by_arm["with_skill"] == ["pass"] * 6  # the scripted server says 9.0 only with the skill
    assert by_arm["baseline"] == ["fail"] * 6
    # The stored prompt is what was sent; the with-skill one carries the skill text.
    skilled = next(t for t in trials if t.arm == "with_skill")
    assert "<skill>" in skilled.prompt["user"] and skilled.completion.input_tokens > 0


def test_failed_calls_are_errors_not_failures_and_resume_finishes_them(cases_file: Path) -> None:
    store = Store()
    with FakeOpenAIServer(fail_first=10_000, fail_status=400) as server:  # 400: not retried
        run_id = start_eval(_opts(cases_file, server.base_url), store)
        execute(run_id, store)
    trials = store.trials(run_id)
    assert {t.status for t in trials} == {"error"} and all(t.grade is None for t in trials)
    assert "bad_request" in trials[0].error
    # The prompt is stored in the same write as the error: what was sent, with its hash and settings.
    sent = {(t.prompt["system"], t.prompt["user"]) for t in trials}
    assert sent == {(m[0]["content"], m[1]["content"]) for m in (r["messages"] for r in server.requests)}
    assert all(t.prompt_sha256 == Prompt(**t.prompt).sha256 and t.request["max_tokens"] == 4096 for t in trials)
    with FakeOpenAIServer() as server:
        _point_run_at(store, run_id, server.base_url)
        assert execute(run_id, store) == "finished"
        assert len(server.requests) == 4
    assert {t.status for t in store.trials(run_id)} == {"answered"}


class _ScriptedClient:
    """FIXTURE: fails with the given errors, then answers."""

    provider, model = "fixture", "scripted"

    def __init__(self, errors: list[ModelCallError]) -> None:
        self.errors, self.calls = list(errors), 0

    def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Completion(text="ok", model=self.model, provider=self.provider)


@pytest.mark.parametrize("kind", ["rate_limit", "server", "timeout", "connection"])
def test_retryable_errors_are_retried(kind: str) -> None:
    inner = _ScriptedClient([ModelCallError(kind, "x"), ModelCallError(kind, "y")])
    client = RetryingClient(inner, attempts=3)
    client._wait = tenacity.wait_none()
    completion = client.complete(ChatRequest(system="s", user="u"))
    assert completion.text == "ok" and completion.attempts == 3 and inner.calls == 3


def test_retries_are_bounded_and_auth_errors_are_not_retried() -> None:
    inner = _ScriptedClient([ModelCallError("server", str(i)) for i in range(10)])
    client = RetryingClient(inner, attempts=3)
    client._wait = tenacity.wait_none()
    with pytest.raises(ModelCallError):
        client.complete(ChatRequest(system="s", user="u"))
    assert inner.calls == 3
    inner = _ScriptedClient([ModelCallError("auth", "bad key")])
    with pytest.raises(ModelCallError, match="auth"):
        RetryingClient(inner, attempts=5).complete(ChatRequest(system="s", user="u"))
    assert inner.calls == 1


def test_run_ids_do_not_collide() -> None:
    from harness.store.db import new_run_id

    ids = {new_run_id() for _ in range(2000)}
    assert len(ids) == 2000


def test_unknown_alias_and_missing_key_are_one_line_errors(cases_file: Path) -> None:
    store = Store()
    with pytest.raises(UserError, match="unknown model alias"):
        start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=["no-such-model"], level="text"), store)
    with pytest.raises(UserError, match="ANTHROPIC_API_KEY is not set"):
        start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=["sonnet"], level="text"), store)


def _cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], capture_output=True, text=True,
                          env=env or os.environ.copy(), cwd=REPO, **kw)


def test_cli_bad_input_gives_one_line_and_exit_2(tmp_path: Path, cases_file: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"cases": [{"input": "ok"}, {"expected": {}}]}')
    out = _cli("eval", str(SKILL), "--cases", str(bad), "--model", "x", "--base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2 and "case 1: input" in out.stderr and "Traceback" not in out.stderr
    out = _cli("eval", str(SKILL), "--cases", str(cases_file), "--model", "opus", "--level", "text")
    assert out.returncode == 2 and "ANTHROPIC_API_KEY" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_base_url_is_stored_as_errors(cases_file: Path) -> None:
    out = _cli("eval", str(SKILL), "--cases", str(cases_file), "--model", "m", "--base-url",
               "http://127.0.0.1:9/v1", "--level", "text", "--json")
    # Every trial errored, so nothing was graded: exit 4 (README "Exit codes"), the report still printed.
    assert out.returncode == 4, out.stderr
    assert "no trial could be graded" in out.stderr
    data = json.loads(out.stdout)
    assert "Traceback" not in out.stderr
    store = Store()
    (run,) = store.list_runs()
    trials = store.trials(run["id"])
    assert {t.status for t in trials} == {"error"} and "connection" in trials[0].error
    assert data  # the JSON report was printed


def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(cases_file: Path, tmp_path: Path) -> None:
    """Kill -9 the eval while calls are in flight; --resume finishes every trial, and
    no trial that had an answer stored is ever sent to the model again."""
    with FakeOpenAIServer(delay_s=0.3) as server:
        args = ["eval", str(SKILL), "--cases", str(cases_file), "--model", "fake-model", "--base-url",
                server.base_url, "--runs", "5", "--level", "text", "--concurrency", "2", "--json"]
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", *args], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        store = Store()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = store.list_runs()
            if runs and (runs[0]["answered"] or 0) >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_id = store.list_runs()[0]["id"]
        before = {t.id: t for t in store.trials(run_id)}
        answered_before = {i for i, t in before.items() if t.status == "answered"}
        assert 4 <= len(answered_before) < 20
        sent_before = len(server.requests)
        out = _cli("eval", "--resume", run_id, "--json")
        assert out.returncode == 0, out.stderr
        after = store.trials(run_id)
        assert len(after) == 20 and all(t.status == "answered" and t.grade for t in after)
        # Answered trials kept their stored answer; the model was called only for the rest.
        for t in after:
            if t.id in answered_before:
                assert t.completion == before[t.id].completion and t.calls == before[t.id].calls
        assert len(server.requests) - sent_before == 20 - len(answered_before)


def test_ctrl_c_stops_promptly_and_the_run_resumes(cases_file: Path) -> None:
    with FakeOpenAIServer(delay_s=2.0) as server:
        args = ["eval", str(SKILL), "--cases", str(cases_file), "--model", "fake-model", "--base-url",
                server.base_url, "--runs", "3", "--level", "text", "--concurrency", "2", "--json"]
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", *args], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint)
        store = Store()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.requests) < 2:
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "resume with: kernelgrade eval --resume" in err
        assert time.monotonic() - t0 < 5  # does not wait for the calls in flight
        (run,) = store.list_runs()
        assert run["status"] == "interrupted"
    with FakeOpenAIServer() as server:
        _point_run_at(store, run["id"], server.base_url)
        out = _cli("eval", "--resume", run["id"], "--json")
        assert out.returncode == 0, out.stderr
    assert all(t.status == "answered" for t in store.trials(run["id"]))


def test_cpu_device_asks_both_arms_for_a_cpu_kernel() -> None:
    (case,) = parse_cases({"cases": [{"input": "Write RMSNorm", "kernel": {
        "op": "rmsnorm", "api": "rms_norm(x, weight, eps)", "checks": ["build_toml", "compile", "run"]}}]})
    base = build_prompt(case, None, device="cpu")
    with_skill = build_prompt(case, "SKILL", device="cpu")
    assert 'backend = "cpu"' in base.user and with_skill.user.endswith(base.user)
    assert 'backend = "cpu"' not in build_prompt(case, None).user


def test_max_cost_stops_the_run_and_counts_what_was_spent_before_a_resume(cases_file: Path, monkeypatch) -> None:
    from harness.common import config as config_mod

    # A price for the fixture model: 1 USD per million input and output tokens.
    monkeypatch.setattr(config_mod, "DEFAULT_PRICES", {"fake-model": config_mod.Price(input=1e6, output=1e6)})
    store = Store()
    with FakeOpenAIServer() as server:
        run_id = start_eval(_opts(cases_file, server.base_url, runs=5, concurrency=1, max_cost=50.0), store)
        assert execute(run_id, store) == "interrupted"
        answered = sum(t.status == "answered" for t in store.trials(run_id))
        assert 0 < answered < 20
        # Resuming does not reset the budget: the run is already over it.
        assert execute(run_id, store) == "interrupted"
        assert sum(t.status == "answered" for t in store.trials(run_id)) == answered


def test_sdk_errors_map_to_kinds_for_both_providers() -> None:
    import anthropic
    import httpx
    import openai

    from harness.models.base import translate_sdk_error

    request = httpx.Request("POST", "http://x/v1")
    for sdk in (openai, anthropic):
        def status(code: int):
            return sdk.APIStatusError("boom", response=httpx.Response(code, request=request), body=None)

        assert translate_sdk_error(status(503), sdk).kind == "server"
        assert translate_sdk_error(status(529), sdk).retryable
        assert translate_sdk_error(status(400), sdk).kind == "bad_request"
        assert translate_sdk_error(sdk.APIConnectionError(request=request), sdk).kind == "connection"
        assert translate_sdk_error(sdk.APITimeoutError(request=request), sdk).kind == "timeout"
        rate = sdk.RateLimitError("slow down", response=httpx.Response(429, request=request), body=None)
        assert translate_sdk_error(rate, sdk).kind == "rate_limit"
        auth = sdk.AuthenticationError("no", response=httpx.Response(401, request=request), body=None)
        assert translate_sdk_error(auth, sdk).kind == "auth" and not translate_sdk_error(auth, sdk).retryable


def test_runs_export_then_import_elsewhere_keeps_every_trial(cases_file: Path, tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAIServer() as server:
        run_id = start_eval(_opts(cases_file, server.base_url, runs=2), Store())
        execute(run_id, Store())
    before = Store().trials(run_id)
    archive = tmp_path / "run.tar"
    out = _cli("runs", "export", run_id, "-o", str(archive))
    assert out.returncode == 0, out.stderr
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "h100-node"))  # another machine's store
    out = _cli("runs", "import", str(archive))
    assert out.returncode == 0, out.stderr
    after = Store().trials(run_id)
    assert len(after) == len(before) == 8
    pick = lambda t: (t.case_id, t.model, t.arm, t.run_index, t.status, t.completion, t.prompt,  # noqa: E731
                      t.grade.score.verdict)
    assert sorted(map(pick, after), key=str) == sorted(map(pick, before), key=str)
    assert _cli("runs", "import", str(archive)).returncode == 2  # already there: one clear line


def test_failed_call_records_its_attempts_and_last_error(cases_file: Path, monkeypatch) -> None:
    """A call that fails after its retries is stored with how many attempts were made and
    the last error, and the report's error lines say so."""
    from rich.console import Console

    from harness.report.summary import summarize
    from harness.report.terminal import render_terminal
    from harness.report.from_store import report_run

    monkeypatch.setattr("harness.models.retry.wait_exponential_jitter", lambda **kw: tenacity.wait_none())
    store = Store()
    with FakeOpenAIServer(fail_first=10**6, fail_status=503) as server:  # every call: 503, retryable
        run_id = start_eval(_opts(cases_file, server.base_url, attempts=3), store)
        execute(run_id, store)
        assert len(server.requests) == 4 * 3  # 2 cases x 2 arms, 3 attempts each
    trials = store.trials(run_id)
    assert {t.status for t in trials} == {"error"}
    for t in trials:
        assert t.calls == 3, t
        assert t.error.startswith("server:") and "503" in t.error and t.error.endswith("(after 3 attempts)")
    errors = summarize(report_run(store, run_id)).errors
    assert len(errors) == 4 and all("after 3 attempts" in e.reason for e in errors)
    console = Console(record=True, width=300)
    render_terminal(report_run(store, run_id), console)
    assert console.export_text().count("(after 3 attempts)") == 4


def test_retry_wrapper_says_how_many_attempts_it_made() -> None:
    inner = _ScriptedClient([ModelCallError("timeout", str(i)) for i in range(5)])
    client = RetryingClient(inner, attempts=2)
    client._wait = tenacity.wait_none()
    with pytest.raises(ModelCallError) as info:
        client.complete(ChatRequest(system="s", user="u"))
    assert info.value.attempts == 2 and str(info.value) == "timeout: 1 (after 2 attempts)"
    inner = _ScriptedClient([ModelCallError("bad_request", "no such model")])
    with pytest.raises(ModelCallError) as info:
        RetryingClient(inner, attempts=5).complete(ChatRequest(system="s", user="u"))
    assert info.value.attempts == 1 and str(info.value) == "bad_request: no such model (after 1 attempt)"
