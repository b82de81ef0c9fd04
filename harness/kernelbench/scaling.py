"""The CPU shapes of an imported KernelBench problem (TEST_SHAPES, used by `--device cpu`).

The rule, as docs/kernelbench.md states it: start from the problem's own sizes; while one
reference call is over budget, halve the largest size that may change (a dimension: see
runtime.is_dimension; a batch size down to 1, any other down to 4; an odd size stays odd,
4095 -> 2047, so awkward widths stay awkward). A halving after which forward no longer
runs on the meta device, or gives an empty tensor, is retried together with the sizes of
equal value (a problem may need batch_size == dim) and, failing that too, undone and those
sizes frozen.
"Over budget" is, in order:
  1. inputs + parameters + outputs over 64 MiB, or the tensors forward allocates over
     1 GiB (meta device, no memory used);
  2. an estimate over the budget: bytes at 4 GB/s plus FLOPs at 10 GFLOP/s (one core);
  3. the measured median of 3 reference calls on one CPU thread (torch.set_num_threads(1))
     over the budget, 50 ms.
A problem whose smallest reachable shape still needs more than 2 GiB is refused as too
large even scaled; one that fits in memory but stays slow is imported with a note.
A second CPU shape follows (second_shape): every size that may change halved once more, so
a kernel that hard-codes the first shape's sizes fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from harness.kernelbench.probe import MetaFacts

BUDGET_MS = 50.0
MAX_CPU_BYTES = 64 * 2 ** 20
MAX_ALLOCATED = 2 ** 30
REFUSE_BYTES = 2 * 2 ** 30
EST_BYTES_PER_S = 4e9
EST_FLOPS_PER_S = 1e10
MAX_STEPS = 400


@dataclass
class Scaled:
    shape: list[int]
    ms: float | None
    """Measured median of one reference call (ms, one thread); None if never measured."""
    facts: MetaFacts | None
    fits: bool
    """Within the byte caps and the time budget."""
    frozen: list[str] = field(default_factory=list)
    """Sizes that could not be halved further (forward failed or a tensor became empty)."""
    steps: int = 0


def floor_of(name: str) -> int:
    return 1 if "batch" in name.lower() else 4


def halve(value: int) -> int:
    return value // 2 if value % 2 == 0 else (value // 2) | 1


def estimate_ms(facts: MetaFacts) -> float:
    return (facts.bytes(torch.float32) / EST_BYTES_PER_S + facts.flops / EST_FLOPS_PER_S) * 1e3


def _within_bytes(facts: MetaFacts, max_bytes: int) -> bool:
    return facts.bytes(torch.float32) <= max_bytes and facts.allocated <= MAX_ALLOCATED


def scale_for_cpu(names: list[str], start: list[int], facts_at: Callable[[list[int]], MetaFacts],
                  measure: Callable[[list[int]], float], *, budget_ms: float = BUDGET_MS,
                  max_bytes: int = MAX_CPU_BYTES) -> Scaled:
    """Apply the rule above. `facts_at(shape)` runs on the meta device (raises when forward
    fails), `measure(shape)` times one real reference call in milliseconds."""
    shape = list(start)
    facts = facts_at(shape)
    frozen: set[str] = set()
    ms: float | None = None
    steps = 0
    while steps < MAX_STEPS:
        steps += 1
        if _within_bytes(facts, max_bytes) and estimate_ms(facts) <= budget_ms:
            ms = measure(shape)
            if ms <= budget_ms:
                return Scaled(shape, ms, facts, True, sorted(frozen), steps)
        movable = [i for i, n in enumerate(names) if n not in frozen and shape[i] > floor_of(names[i])]
        if not movable:
            break
        i = max(movable, key=lambda k: (shape[k], -k))
        # Alone, then with the sizes of equal value (a broadcast that needs batch == width).
        tied = [k for k in movable if shape[k] == shape[i]]
        for group in ([i], tied) if len(tied) > 1 else ([i],):
            trial = list(shape)
            for k in group:
                trial[k] = max(floor_of(names[k]), halve(shape[k]))
            try:
                trial_facts = facts_at(trial)
            except Exception:  # noqa: BLE001 - the problem's own constraint (groups, a flatten size)
                continue
            if not trial_facts.empty:
                shape, facts = trial, trial_facts
                break
        else:
            frozen.update(names[k] for k in tied)
    if ms is None and facts.allocated <= MAX_ALLOCATED:
        ms = measure(shape)
    return Scaled(shape, ms, facts, False, sorted(frozen), steps)


def second_shape(names: list[str], shape: list[int], frozen: list[str],
                 facts_at: Callable[[list[int]], MetaFacts]) -> list[int] | None:
    """A second, smaller CPU shape (every size that may change halved once, else only the
    largest): a kernel that assumes the first shape's sizes fails on it. None if none runs."""
    movable = [i for i, n in enumerate(names) if n not in frozen and shape[i] > floor_of(n)]
    if not movable:
        return None
    largest = max(movable, key=lambda k: (shape[k], -k))
    for group in (movable, [largest]):
        trial = list(shape)
        for k in group:
            trial[k] = max(floor_of(names[k]), halve(shape[k]))
        try:
            if not facts_at(trial).empty:
                return trial
        except Exception:  # noqa: BLE001 - the problem's own constraint
            continue
    return None


__all__ = ["BUDGET_MS", "MAX_CPU_BYTES", "REFUSE_BYTES", "Scaled", "estimate_ms", "floor_of", "halve",
           "scale_for_cpu", "second_shape"]
