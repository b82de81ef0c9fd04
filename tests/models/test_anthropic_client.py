"""The Anthropic client over the real SDK against a scripted Messages API: a temperature the
installed SDK cannot send is not sent (it was a TypeError), and the run records None."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import anthropic
import pytest

from harness.models import anthropic_client
from harness.models.anthropic_client import AnthropicClient, sampling_kwargs, sdk_takes_temperature
from harness.models.base import ChatRequest
from harness.models.retry import RetryingClient
from tests.fakes.anthropic_server import FakeAnthropicServer

REPO = Path(__file__).resolve().parents[2]


def test_the_signature_decides_whether_a_temperature_is_sent() -> None:
    from anthropic.resources.messages import Messages

    takes = "temperature" in inspect.signature(Messages.create).parameters
    assert sdk_takes_temperature() is takes
    assert sampling_kwargs(0.5) == ({"temperature": 0.5} if takes else {})
    assert sampling_kwargs(None) == {}


def test_a_call_with_a_temperature_succeeds_and_sends_what_the_sdk_allows() -> None:
    with FakeAnthropicServer(refuse_sampling=not sdk_takes_temperature()) as server:
        client = RetryingClient(AnthropicClient("claude-test", api_key="k", base_url=server.base_url), attempts=1)
        completion = client.complete(ChatRequest(system="s", user="u", temperature=0.5, max_tokens=20))
    assert completion.text == "ok 9.0" and completion.input_tokens == 60 and completion.cached_tokens == 10
    assert ("temperature" in server.requests[0]) is sdk_takes_temperature()
    assert client.takes_temperature is sdk_takes_temperature()


def test_an_older_sdk_with_temperature_still_gets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anthropic_client, "sdk_takes_temperature", lambda: True)
    assert sampling_kwargs(0.25) == {"temperature": 0.25}


def test_an_eval_with_an_anthropic_model_records_the_temperature_it_sent(tmp_path: Path, monkeypatch) -> None:
    from harness.store.db import Store
    from harness.workflows.evaluate import EvalOptions, execute, start_eval

    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"input": "Which capability?", "expected": {"contains": "9.0"}}]}))
    with FakeAnthropicServer(refuse_sampling=not sdk_takes_temperature()) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        store = Store()
        run_id = start_eval(EvalOptions(skill_dir=REPO / "tests/fixtures/skills/valid-skill", cases_path=cases,
                                        models=["anthropic:claude-test"], level="text", temperature=0.7), store)
        assert execute(run_id, store) == "finished"
    trials = store.trials(run_id)
    assert all(t.status == "answered" and t.grade.score.verdict == "pass" for t in trials), [t.error for t in trials]
    sent = 0.7 if sdk_takes_temperature() else None
    assert all(t.request["temperature"] == sent for t in trials)
    assert anthropic.__version__  # the SDK under test is the installed one
