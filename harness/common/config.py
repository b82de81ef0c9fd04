"""User-editable configuration: model aliases and prices.

Defaults live here. Two files override them key by key, later wins:
1. the user config, `<user_config_dir>/config.toml` (or `$KERNELGRADE_HOME/config.toml`);
2. a project-local `kernelgrade.toml`, the first found walking up from the current folder
   (a kernel repository pins its aliases and prices beside its code).
Both have the same format:

    [models]
    sonnet = "anthropic:claude-sonnet-4-5"
    mybox  = "openai-compat:qwen2.5-coder@http://gpu-box:8000/v1"

    [prices."claude-sonnet-4-5"]   # USD per million tokens
    input = 3.0
    output = 15.0
    cached_input = 0.3     # prompt-cache reads
    cache_write = 3.75     # prompt-cache writes (5-minute TTL)
    batch = 0.5            # the fraction charged through the batch API
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

from harness.common.errors import UserError
from harness.common.paths import config_dir

DEFAULT_MODELS: dict[str, str] = {
    "haiku": "anthropic:claude-haiku-4-5",
    "sonnet": "anthropic:claude-sonnet-4-5",
    "opus": "anthropic:claude-opus-4-5",
    "gpt-4o": "openai:gpt-4o",
    "gpt-4o-mini": "openai:gpt-4o-mini",
    "gpt-4.1": "openai:gpt-4.1",
    "gpt-4.1-mini": "openai:gpt-4.1-mini",
}


class Price(BaseModel):
    """USD per million tokens, with the provider's prompt-cache and batch terms."""

    input: float
    """Input tokens neither read from nor written to the prompt cache."""
    output: float
    cached_input: float | None = None
    """Input tokens read from the prompt cache (Anthropic: 0.1x input; OpenAI: 0.1x-0.5x by
    model); None: the input price."""
    cache_write: float | None = None
    """Input tokens written to the prompt cache (Anthropic, 5-minute TTL: 1.25x input); None: the
    input price (OpenAI caches automatically and charges nothing extra to write)."""
    batch: float = 0.5
    """The fraction of every price above charged through the provider's batch API (Anthropic
    Message Batches and the OpenAI Batch API: half price; the cache terms stack with it)."""

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, *,
             cache_write_tokens: int = 0, batch: bool = False) -> float:
        """USD for one call. `input_tokens` counts all input, cached reads and writes included
        (kernelgrade's convention for both providers); `batch`: answered through a batch API."""
        read = self.cached_input if self.cached_input is not None else self.input
        write = self.cache_write if self.cache_write is not None else self.input
        fresh = max(input_tokens - cached_tokens - cache_write_tokens, 0)
        usd = (fresh * self.input + cached_tokens * read + cache_write_tokens * write
               + output_tokens * self.output) / 1e6
        return usd * self.batch if batch else usd


def _anthropic(input: float, output: float) -> Price:
    """Anthropic's published multipliers: cache reads 0.1x input, 5-minute cache writes 1.25x."""
    return Price(input=input, output=output, cached_input=round(input * 0.1, 6),
                 cache_write=round(input * 1.25, 6))


DEFAULT_PRICES: dict[str, Price] = {
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "gpt-4o": Price(input=2.5, output=10.0, cached_input=1.25),
    "gpt-4o-mini": Price(input=0.15, output=0.6, cached_input=0.075),
    "gpt-4.1": Price(input=2.0, output=8.0, cached_input=0.5),
    "gpt-4.1-mini": Price(input=0.4, output=1.6, cached_input=0.1),
}


class Config(BaseModel):
    models: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODELS))
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    source: str | None = None

    def price_of(self, model: str) -> Price | None:
        """The model's price: an exact id, else the longest priced name it starts with
        ("claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5"); None for local and unknown ids."""
        price = self.prices.get(model)
        if price is None:
            names = [name for name in self.prices if model.startswith(name)]
            price = self.prices[max(names, key=len)] if names else None
        return price

    def cost_usd(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0, *,
                 cache_write_tokens: int = 0, batch: bool = False) -> float | None:
        """None when the model has no price (local models, unknown ids). Cache reads, cache
        writes and batch answers are charged at the model's cache and batch prices."""
        price = self.price_of(model)
        if price is None:
            return None
        return price.cost(input_tokens, output_tokens, cached_tokens, cache_write_tokens=cache_write_tokens,
                          batch=batch)

    def completion_cost_usd(self, completion) -> float | None:
        """cost_usd for a stored harness.models.base.Completion (its cache writes and batch flag included)."""
        return self.cost_usd(completion.model, completion.input_tokens, completion.output_tokens,
                             completion.cached_tokens, cache_write_tokens=getattr(completion, "cache_write_tokens", 0),
                             batch=getattr(completion, "batch", False))


PROJECT_FILE = "kernelgrade.toml"


def config_path() -> Path:
    return config_dir() / "config.toml"


def project_config_path(start: Path | None = None) -> Path | None:
    """The nearest kernelgrade.toml in `start` (default: the current folder) or above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None) -> Config:
    """Defaults, then the user config, then the project's kernelgrade.toml; with `path`, only it."""
    config = Config()
    paths = [path] if path is not None else [config_path(), project_config_path()]
    sources = [str(p) for p in paths if p is not None and p.exists() and _merge(config, p)]
    config.source = ", ".join(sources) or None
    return config


def _merge(config: Config, path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"{path}: cannot read config: {err}") from None
    models = data.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
        raise UserError(f"{path}: [models] must map alias = \"provider:model-id\"")
    config.models.update(models)
    for name, spec in data.get("prices", {}).items():
        try:
            config.prices[name] = Price.model_validate(spec)
        except Exception as err:
            raise UserError(f"{path}: prices.{name}: {err}") from None
    return True


def load_dotenv_files() -> str | None:
    """Load the nearest .env (walking up from the current folder) into the environment,
    never overriding a variable already set; the file found, or None. API keys usually
    live there, as in upskill and promptfoo."""
    import os

    from dotenv import find_dotenv, load_dotenv

    if os.environ.get("KERNELGRADE_DOTENV", "1") == "0":  # tests: keys come only from the test
        return None
    found = find_dotenv(usecwd=True)
    if found:
        load_dotenv(found, override=False)
    return found or None
