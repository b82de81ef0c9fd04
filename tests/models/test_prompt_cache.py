"""Prompt caching (issue 20) through the real SDKs against fixture servers that check each
request's shape and report usage the way each provider does (tests/fakes/prompt_cache.py):
the shared prefix is marked where it belongs, identical across cases, and caching changes no
prompt text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.models.anthropic_client import message_params
from harness.models.base import ChatRequest
from harness.models.caching import cached_request, shared_prefix
from harness.models.local_server import LocalServer
from harness.models.openai_compat import chat_params
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.prompt_cache import AnthropicCache, OpenAICache

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "skills/h100-kernel-builder"  # the shipped skill: a ~5,000-token prefix


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    cases = json.loads((REPO / "cases/h100-text.json").read_text())["cases"][:3]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": cases}))
    return path


def _joined(content) -> str:
    return content if isinstance(content, str) else "".join(b["text"] for b in content)


def _sent_text(body: dict) -> tuple[str, str]:
    """(system, user) as the model reads them, however the request is marked."""
    system = body.get("system")
    if system is None:  # OpenAI: the system message
        return body["messages"][0]["content"], body["messages"][1]["content"]
    return _joined(system), _joined(body["messages"][0]["content"])


def _anthropic_run(cases_file: Path, monkeypatch, *, prompt_cache: bool) -> tuple[list[dict], Store, str]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with FakeAnthropicServer(refuse_sampling=False, cache=AnthropicCache()) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        store = Store()
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=["anthropic:claude-sonnet-4-5"],
                                        level="text", concurrency=1, prompt_cache=prompt_cache), store)
        assert execute(run_id, store) == "finished"
    return server.requests, store, run_id


def test_anthropic_marks_the_skill_block_and_the_prefix_is_identical_across_cases(cases_file: Path,
                                                                                   monkeypatch) -> None:
    requests, store, run_id = _anthropic_run(cases_file, monkeypatch, prompt_cache=True)
    trials = store.trials(run_id)
    assert all(t.status == "answered" for t in trials), [t.error for t in trials]
    with_skill = [r for r in requests if "<skill>" in _sent_text(r)[1]]
    baseline = [r for r in requests if r not in with_skill]
    assert len(with_skill) == len(baseline) == 3
    for body in with_skill:
        # the breakpoint is on the skill block, the last block of the shared prefix
        assert "cache_control" not in body["system"][0]
        head, tail = body["messages"][0]["content"]
        assert head["cache_control"] == {"type": "ephemeral"} and "cache_control" not in tail
    assert len({json.dumps([b["system"], b["messages"][0]["content"][0]]) for b in with_skill}) == 1
    for body in baseline:  # only the system prompt is shared
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in block for block in body["messages"][0]["content"])
    # What the trials stored is what was sent, joined
    sent = {_sent_text(b) for b in requests}
    assert {(t.prompt["system"], t.prompt["user"]) for t in trials} == sent
    # Usage as Anthropic reports it: the first with-skill call writes the prefix, the others read it
    by_arm = sorted((t for t in trials if t.arm == "with_skill"), key=lambda t: t.id)
    first, *rest = [t.completion for t in by_arm]
    assert first.cache_write_tokens > 4000 and first.cached_tokens == 0
    assert all(c.cached_tokens == first.cache_write_tokens and c.cache_write_tokens == 0 for c in rest)
    assert all(t.completion.cached_tokens == 0 == t.completion.cache_write_tokens
               for t in trials if t.arm == "baseline")  # the system prompt alone is too short to cache
    assert by_arm[0].request["prompt_cache"] is True and by_arm[0].request["cache_prefix"] > 0


def test_caching_changes_no_prompt_text(cases_file: Path, monkeypatch) -> None:
    cached, *_ = _anthropic_run(cases_file, monkeypatch, prompt_cache=True)
    plain, store, run_id = _anthropic_run(cases_file, monkeypatch, prompt_cache=False)
    assert all(isinstance(b["system"], str) and isinstance(b["messages"][0]["content"], str) for b in plain)
    assert "cache_control" not in json.dumps(plain)
    assert sorted(map(_sent_text, cached)) == sorted(map(_sent_text, plain))
    assert all(t.completion.cached_tokens == 0 for t in store.trials(run_id))


def test_openai_keeps_the_prefix_first_and_names_it(cases_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    with FakeOpenAIServer(cache=OpenAICache()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        store = Store()
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases_file, models=["openai:gpt-4.1"],
                                        level="text", concurrency=1), store)
        assert execute(run_id, store) == "finished"
    with_skill = [r for r in server.requests if "<skill>" in r["messages"][1]["content"]]
    baseline = [r for r in server.requests if r not in with_skill]
    assert [m["role"] for m in with_skill[0]["messages"]] == ["system", "user"]
    assert all(r["messages"][1]["content"].startswith("Use the following skill") for r in with_skill)
    assert len({r["prompt_cache_key"] for r in with_skill}) == 1
    assert len({r["prompt_cache_key"] for r in baseline}) == 1
    assert with_skill[0]["prompt_cache_key"] != baseline[0]["prompt_cache_key"]
    trials = sorted((t for t in store.trials(run_id) if t.arm == "with_skill"), key=lambda t: t.id)
    assert trials[0].completion.cached_tokens == 0
    assert all(t.completion.cached_tokens >= 4096 for t in trials[1:])  # the skill prefix, in 128-token steps


def test_an_openai_compatible_server_gets_no_extra_field() -> None:
    request = ChatRequest(system="s", user="u")
    assert "prompt_cache_key" not in chat_params("m", request, provider="openai-compat")
    assert "prompt_cache_key" in chat_params("m", request, provider="openai")
    assert "prompt_cache_key" not in chat_params("m", request.model_copy(update={"prompt_cache": False}),
                                                 provider="openai")


def test_the_prefix_is_the_skill_block_with_its_header_and_footer() -> None:
    from harness.prompts.build import SKILL_FOOTER, SKILL_HEADER

    user = f"{SKILL_HEADER}BLOCK{SKILL_FOOTER}task"
    assert shared_prefix(user, "BLOCK") == len(user) - len("task")
    assert shared_prefix("task", None) == 0
    assert cached_request(ChatRequest(system="s", user=user), "BLOCK", enabled=False).cache_prefix == 0
    # a prefix that covers the whole message is one marked block, never an empty one
    whole = cached_request(ChatRequest(system="s", user=user[:-4]), "BLOCK")
    (block,) = message_params("m", whole)["messages"][0]["content"]
    assert block["cache_control"] and block["text"] == user[:-4]


def test_the_embedded_server_keeps_its_prompt_cache_unless_told_not_to(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    on = LocalServer(port=1, model_path=model)._command(model)
    off = LocalServer(port=1, model_path=model, prompt_cache=False)._command(model)
    assert on[on.index("--cache") + 1] == "True" and "--cache" not in off


def test_the_report_shows_cached_tokens_and_costs_them_at_cache_prices(cases_file: Path, monkeypatch) -> None:
    import io

    from rich.console import Console

    from harness.common.config import Config
    from harness.report.from_store import report_run
    from harness.report.terminal import render_terminal

    _, store, run_id = _anthropic_run(cases_file, monkeypatch, prompt_cache=True)
    run = report_run(store, run_id)
    price = Config().price_of("claude-sonnet-4-5")
    for t in run.trials:
        fresh = t.input_tokens - t.cached_tokens - t.cache_write_tokens
        by_hand = (fresh * 3.0 + t.cached_tokens * 0.3 + t.cache_write_tokens * 3.75 + t.output_tokens * 15.0) / 1e6
        assert t.cost_usd == pytest.approx(by_hand) and price.cached_input == 0.3
    assert any(t.cached_tokens for t in run.trials) and any(t.cache_write_tokens for t in run.trials)
    out = io.StringIO()
    render_terminal(run, Console(file=out, width=200))
    assert "cached in" in out.getvalue()
