"""What prompt caching and the batch APIs save: billed input-token equivalents per trial,
uncached vs cached vs batch+cached, for cases/h100-text.json x 3 runs with the shipped skill.

Each configuration is a real `eval` (text level) through the real SDKs against the fixture
servers (tests/fakes: labelled fixtures, scripted answers), which report usage the way each
provider does: Anthropic's cache_creation_input_tokens / cache_read_input_tokens at the
cache_control breakpoint, OpenAI's automatic prompt_tokens_details.cached_tokens in 128-token
steps from 1,024 (tokens estimated at 4 characters). The bill uses the published multipliers in
the price table (harness/common/config.py): Anthropic cache writes 1.25x and reads 0.1x the input
price, OpenAI cached input 0.25x (gpt-4.1) or 0.5x (gpt-4o), batch 0.5x on every term.

An input-token equivalent is the input cost divided by the price of one uncached input token.
"Uncached" is the bill with no cache at all (`--no-prompt-cache`; for OpenAI, whose cache is
automatic, every input token at the full price). Targets for the with-skill arm: cached <= 0.3x
uncached, batch+cached <= 0.15x.

Caveat: the fixture answers at once, so calls in flight together never miss the cache as they
can at a provider before the first write lands; and batch items hit the cache as they would if
processed in order (Anthropic calls batch cache hits best-effort).

    .venv/bin/python benchmarks/cost.py [--runs 3] [--models anthropic:claude-sonnet-4-5,openai:gpt-4.1,openai:gpt-4o]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SKILL = REPO / "skills/h100-kernel-builder"
CASES = REPO / "cases/h100-text.json"
TARGETS = {"cached": 0.30, "batch+cached": 0.15}


@contextlib.contextmanager
def _server(provider: str, *, batch: bool):
    from tests.fakes.anthropic_server import FakeAnthropicServer
    from tests.fakes.batch_servers import FakeAnthropicBatches, FakeOpenAIBatches
    from tests.fakes.openai_server import FakeOpenAIServer
    from tests.fakes.prompt_cache import AnthropicCache, OpenAICache

    if provider == "anthropic":
        server = FakeAnthropicBatches() if batch else FakeAnthropicServer(refuse_sampling=False, cache=AnthropicCache())
        env = "ANTHROPIC_BASE_URL"
    else:
        server = FakeOpenAIBatches() if batch else FakeOpenAIServer(cache=OpenAICache())
        env = "OPENAI_BASE_URL"
    before = os.environ.get(env)
    with server:
        os.environ[env] = server.base_url
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = before


def _run(model: str, *, runs: int, prompt_cache: bool, batch: bool):
    from harness.store.db import Store
    from harness.workflows.evaluate import EvalOptions, execute, start_eval

    with _server(model.split(":")[0], batch=batch):
        store = Store()
        run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=CASES, models=[model], runs=runs, level="text",
                                        prompt_cache=prompt_cache, batch=batch), store)
        execute(run_id, store)
        return store.trials(run_id)


def _equivalents(trials, *, cache_prices: bool) -> dict[str, float]:
    """Mean input-token equivalents per trial, by arm."""
    from harness.common.config import load_config

    config = load_config()
    out: dict[str, list[float]] = {}
    for t in trials:
        c = t.completion
        price = config.price_of(c.model)
        if cache_prices:
            usd = price.cost(c.input_tokens, 0, c.cached_tokens, cache_write_tokens=c.cache_write_tokens, batch=c.batch)
        else:
            usd = price.cost(c.input_tokens, 0)
        out.setdefault(t.arm, []).append(usd / price.input * 1e6)
    return {arm: sum(v) / len(v) for arm, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", default="anthropic:claude-sonnet-4-5,openai:gpt-4.1,openai:gpt-4o")
    args = ap.parse_args()
    import logging

    from harness.common.config import load_config

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(KERNELGRADE_HOME=tmp, KERNELGRADE_DOTENV="0", KERNELGRADE_BATCH_POLL_S="0.01",
                          ANTHROPIC_API_KEY="fixture", OPENAI_API_KEY="fixture")
        n_cases = len(__import__("json").loads(CASES.read_text())["cases"])
        print(f"{CASES.relative_to(REPO)}: {n_cases} cases x {args.runs} runs x 2 arms, skill "
              f"{SKILL.relative_to(REPO)}; billed input-token equivalents per trial (fixture usage, published "
              "multipliers)")
        failed = []
        for model in args.models.split(","):
            uncached = _equivalents(_run(model, runs=args.runs, prompt_cache=False, batch=False), cache_prices=False)
            cached = _equivalents(_run(model, runs=args.runs, prompt_cache=True, batch=False), cache_prices=True)
            batched = _equivalents(_run(model, runs=args.runs, prompt_cache=True, batch=True), cache_prices=True)
            print(f"\n{model}")
            print(f"  {'arm':<11}{'uncached':>10}{'cached':>10}{'ratio':>7}{'batch+cached':>14}{'ratio':>7}")
            for arm in ("with_skill", "baseline"):
                u, c, b = uncached[arm], cached[arm], batched[arm]
                print(f"  {arm:<11}{u:>10,.0f}{c:>10,.0f}{c / u:>7.3f}{b:>14,.0f}{b / u:>7.3f}")
                if arm == "with_skill":
                    for name, ratio in (("cached", c / u), ("batch+cached", b / u)):
                        if ratio > TARGETS[name]:
                            failed.append(f"{model} {name} {ratio:.3f} > {TARGETS[name]}")
            price = load_config().price_of(model.split(":")[1])
            floor = (price.cached_input or price.input) / price.input
            if floor > TARGETS["cached"]:
                print(f"  (its published cached-input price is {floor:g}x the input price: no cache can bring the "
                      f"with-skill arm under {TARGETS['cached']}x)")
        print(f"\ntargets (with-skill arm): cached <= {TARGETS['cached']}x uncached, batch+cached <= "
              f"{TARGETS['batch+cached']}x")
        print("missed: " + "; ".join(failed) if failed else "all models meet both targets")


if __name__ == "__main__":
    main()
