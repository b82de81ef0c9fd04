"""Turn a `--model` value into a client: aliases, providers, keys, base URLs."""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.common.config import Config
from harness.common.errors import UserError
from harness.models.base import ModelClient
from harness.models.retry import RetryingClient

PROVIDERS = ("anthropic", "openai", "openai-compat", "local")
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: what the user typed, and where it goes."""

    name: str
    """As given on the command line (the label in reports)."""
    provider: str
    model_id: str
    base_url: str | None = None
    key_env: str | None = None


def default_model() -> str:
    """`local` unless an API key is configured (issue 4)."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "sonnet"
    if os.environ.get("OPENAI_API_KEY"):
        return "gpt-4o-mini"
    return "local"


#: upskill's (fast-agent's) model spelling `provider.model-id`: its providers, as kernelgrade's.
UPSKILL_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "generic": "openai-compat"}
#: fast-agent's default for `generic.NAME` when GENERIC_BASE_URL is not set (Ollama's port).
GENERIC_DEFAULT_URL = "http://localhost:11434/v1"
#: Reasoning-effort suffixes fast-agent accepts on OpenAI ids (`openai.o3-mini.low`).
EFFORTS = ("minimal", "low", "medium", "high")


def _upskill_spelling(name: str, base_url: str | None, api_key_env: str | None) -> ModelSpec | None:
    """`anthropic.claude-...`, `openai.gpt-...`, `generic.NAME` (GENERIC_BASE_URL, GENERIC_API_KEY), as
    upskill takes them; None for anything else."""
    head, dot, rest = name.partition(".")
    if not dot or head not in UPSKILL_PROVIDERS or not rest or ":" in head:
        return None
    provider = UPSKILL_PROVIDERS[head]
    if head == "openai" and rest.rpartition(".")[2] in EFFORTS:
        raise UserError(f"--model {name}: a reasoning-effort suffix ({rest.rpartition('.')[2]}) is not supported; "
                        f"use openai.{rest.rpartition('.')[0]}")
    if head == "generic":
        url = base_url or os.environ.get("GENERIC_BASE_URL") or GENERIC_DEFAULT_URL
        key_env = api_key_env or ("GENERIC_API_KEY" if os.environ.get("GENERIC_API_KEY") else None)
        return ModelSpec(name=name, provider=provider, model_id=rest, base_url=url, key_env=key_env)
    return ModelSpec(name=name, provider=provider, model_id=rest, base_url=base_url,
                     key_env=api_key_env or KEY_ENV.get(provider))


def resolve(name: str, config: Config, *, base_url: str | None = None,
            api_key_env: str | None = None) -> ModelSpec:
    """`local`, an alias from config, `provider:id`, upskill's `provider.id`, or any id with --base-url."""
    if name == "local" and base_url is None:
        return ModelSpec(name=name, provider="local", model_id="local")
    upskill = _upskill_spelling(name, base_url, api_key_env) if name not in config.models else None
    if upskill is not None:
        return upskill
    if base_url is not None:
        model_id = name.split(":", 1)[1] if name.startswith("openai-compat:") else name
        return ModelSpec(name=name, provider="openai-compat", model_id=model_id,
                         base_url=base_url, key_env=api_key_env)
    target = config.models.get(name, name)
    if ":" not in target:
        if target.startswith("claude"):
            target = f"anthropic:{target}"
        elif target.startswith(("gpt-", "o1", "o3", "o4")):
            target = f"openai:{target}"
        else:
            known = ", ".join(sorted(config.models))
            raise UserError(f"--model {name}: unknown model alias (known: local, {known}; "
                            "or use provider:id, or --base-url for an OpenAI-compatible server)")
    provider, model_id = target.split(":", 1)
    url = None
    if "@" in model_id:  # "openai-compat:id@http://host/v1" in config
        model_id, url = model_id.split("@", 1)
    if provider not in PROVIDERS:
        raise UserError(f"--model {name}: unknown provider {provider!r} (one of {', '.join(PROVIDERS)})")
    return ModelSpec(name=name, provider=provider, model_id=model_id, base_url=url,
                     key_env=api_key_env or KEY_ENV.get(provider))


def check_key(spec: ModelSpec) -> None:
    """Fail early, before any trial, when a needed key is missing."""
    if spec.provider in KEY_ENV and not os.environ.get(spec.key_env or KEY_ENV[spec.provider]):
        raise UserError(f"--model {spec.name}: {spec.key_env or KEY_ENV[spec.provider]} is not set")
    if spec.provider == "openai-compat" and spec.key_env and not os.environ.get(spec.key_env):
        raise UserError(f"--model {spec.name}: {spec.key_env} is not set (named by --api-key-env)")


def make_client(spec: ModelSpec, *, timeout_s: float = 300.0, attempts: int = 5,
                base_url_override: str | None = None) -> ModelClient:
    """Build the SDK client wrapped in bounded retries. `base_url_override` is the
    running local server's URL for provider `local`."""
    if spec.provider == "anthropic":
        from harness.models.anthropic_client import AnthropicClient

        inner = AnthropicClient(spec.model_id, api_key=os.environ[spec.key_env or "ANTHROPIC_API_KEY"],
                                base_url=spec.base_url, timeout_s=timeout_s)
    else:
        from harness.models.openai_compat import OpenAICompatClient

        url = base_url_override or spec.base_url
        key = os.environ.get(spec.key_env) if spec.key_env else None
        inner = OpenAICompatClient(spec.model_id, provider=spec.provider, base_url=url,
                                   api_key=key, timeout_s=timeout_s)
    return RetryingClient(inner, attempts=attempts)
