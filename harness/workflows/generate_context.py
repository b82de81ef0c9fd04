"""One generate run in progress, as every step of it sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.common.paths import artifacts_dir
from harness.models.base import ModelClient
from harness.store.db import Store
from harness.workflows.generate_log import (
    GenerateLog,
)
from harness.workflows.generate_options import (
    GenerateHooks,
    GenerateOptions,
)


@dataclass
class GenerateContext:
    run_id: str
    store: Store
    opts: GenerateOptions
    config: dict
    steps: GenerateLog
    hooks: GenerateHooks
    teacher: ModelClient | None = None
    case_writer: ModelClient | None = None
    """--test-gen-model's client; None: the teacher writes the cases."""
    counter: Callable[[str], int] | None = None
    counter_name: str = "estimate"
    notes: list[str] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return artifacts_dir(self.run_id)


__all__ = ["GenerateContext"]
