"""Cost arithmetic at cache and batch prices, against hand-computed figures (issue 20)."""

from __future__ import annotations

import pytest

from harness.common.config import DEFAULT_PRICES, Config, Price
from harness.models.base import Completion

SONNET = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)


def test_the_table_carries_each_providers_published_multipliers() -> None:
    for name in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        p = DEFAULT_PRICES[name]
        assert p.cached_input == pytest.approx(0.1 * p.input) and p.cache_write == pytest.approx(1.25 * p.input)
    assert DEFAULT_PRICES["gpt-4o"].cached_input == 1.25 and DEFAULT_PRICES["gpt-4.1"].cached_input == 0.5
    assert DEFAULT_PRICES["gpt-4o"].cache_write is None  # OpenAI charges nothing extra to write
    assert all(p.batch == 0.5 for p in DEFAULT_PRICES.values())


def test_a_cache_write_costs_1_25x_and_a_read_0_1x() -> None:
    # 10,000 input tokens: 7,000 written to the cache, 3,000 fresh; 500 output.
    # 3,000 x 3 + 7,000 x 3.75 + 500 x 15 = 9,000 + 26,250 + 7,500 = 42,750 per 1e6 = 0.04275 USD
    assert SONNET.cost(10_000, 500, cache_write_tokens=7_000) == pytest.approx(0.04275)
    # The next call reads those 7,000: 3,000 x 3 + 7,000 x 0.3 + 500 x 15 = 9,000 + 2,100 + 7,500 = 0.0186 USD
    assert SONNET.cost(10_000, 500, 7_000) == pytest.approx(0.0186)
    # Uncached: 10,000 x 3 + 500 x 15 = 37,500 -> 0.0375 USD
    assert SONNET.cost(10_000, 500) == pytest.approx(0.0375)


def test_batch_halves_every_term_cache_terms_included() -> None:
    assert SONNET.cost(10_000, 500, 7_000, batch=True) == pytest.approx(0.0093)
    assert SONNET.cost(10_000, 500, cache_write_tokens=7_000, batch=True) == pytest.approx(0.021375)
    gpt = DEFAULT_PRICES["gpt-4.1"]  # 2.0 in, 0.5 cached, 8.0 out
    # 4,000 fresh x 2 + 6,000 cached x 0.5 + 1,000 x 8 = 8,000 + 3,000 + 8,000 = 0.019; batch 0.0095
    assert gpt.cost(10_000, 1_000, 6_000) == pytest.approx(0.019)
    assert gpt.cost(10_000, 1_000, 6_000, batch=True) == pytest.approx(0.0095)


def test_a_price_without_cache_terms_charges_the_input_price() -> None:
    plain = Price(input=2.0, output=4.0)
    assert plain.cost(1_000, 0, 400, cache_write_tokens=100) == pytest.approx(0.002)


def test_a_stored_completion_is_costed_with_its_cache_writes_and_batch_flag() -> None:
    config = Config()
    c = Completion(text="", model="claude-sonnet-4-5-20250929", provider="anthropic", input_tokens=10_000,
                   output_tokens=500, cached_tokens=0, cache_write_tokens=7_000, batch=True)
    assert config.completion_cost_usd(c) == pytest.approx(0.021375)
    assert config.cost_usd("local", 1, 1) is None


def test_the_longest_priced_name_wins() -> None:
    # "gpt-4o-mini-2024-07-18" starts with both "gpt-4o" and "gpt-4o-mini": the mini price applies.
    assert Config().price_of("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
