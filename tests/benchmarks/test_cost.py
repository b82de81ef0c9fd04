"""benchmarks/cost.py on one run of the shipped skill: caching and batch bring the with-skill
arm's billed input under the issue-20 targets for Anthropic (the fixture reports usage as
Anthropic does)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cached_and_batch_bills_meet_the_targets(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.setenv("KERNELGRADE_BATCH_POLL_S", "0.01")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "fixture")
    import cost

    model = "anthropic:claude-sonnet-4-5"
    uncached = cost._equivalents(cost._run(model, runs=1, prompt_cache=False, batch=False), cache_prices=False)
    cached = cost._equivalents(cost._run(model, runs=1, prompt_cache=True, batch=False), cache_prices=True)
    batched = cost._equivalents(cost._run(model, runs=1, prompt_cache=True, batch=True), cache_prices=True)
    assert uncached["with_skill"] > 5000  # the skill block is the bulk of the prompt
    assert cached["with_skill"] <= cost.TARGETS["cached"] * uncached["with_skill"]
    assert batched["with_skill"] <= cost.TARGETS["batch+cached"] * uncached["with_skill"]
    assert batched["baseline"] == 0.5 * uncached["baseline"]  # too short to cache: batch halves it
    sys.modules.pop("cost", None)
