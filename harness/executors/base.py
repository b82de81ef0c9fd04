"""The executor interface: grading tasks in, outcomes out as they complete.

Two implementations: `local` (threads, one lane per GPU and per CPU-timing slot) and `ray`
(one Ray task per grading step, across nodes). Both take content-only tasks
(harness.executors.tasks.GradeTask) and hand back GradeOutcome records; the driver, and only
the driver, writes them to the store.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol, runtime_checkable

from harness.common.errors import UserError
from harness.executors.tasks import GradeOutcome, GradeTask


@dataclass
class ExecutorStatus:
    """For the progress bar: the nodes, and the tasks in flight on each."""

    executor: str
    nodes: list[str]
    in_flight: int = 0
    in_flight_by_node: dict[str, int] = field(default_factory=dict)
    done_by_node: Counter = field(default_factory=Counter)
    excluded: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One short line: "ray 2 nodes (1 left out) · 3 in flight · done node-a 5, node-b 4"."""
        out = f"{self.executor} {len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}"
        if self.excluded:
            out += f" ({len(self.excluded)} left out)"
        out += f" · {self.in_flight} in flight"
        busy = [f"{n} {k}" for n, k in sorted(self.in_flight_by_node.items()) if k]
        if busy:
            out += f" ({', '.join(busy)})"
        if self.done_by_node:
            out += " · done " + ", ".join(f"{n} {k}" for n, k in sorted(self.done_by_node.items()))
        return out


@runtime_checkable
class Executor(Protocol):
    name: str
    level: str | None
    """The level resolved for the batch (auto read from this machine, or from the cluster)."""

    def submit(self, task: GradeTask) -> Future[GradeOutcome]:
        """Start grading `task`; the future never raises: a failure is an outcome."""

    def map_grades(self, tasks: Iterable[GradeTask]) -> Iterator[GradeOutcome]:
        """Grade every task; yield each outcome as soon as it is ready (any order)."""

    def status(self) -> ExecutorStatus: ...

    def describe(self) -> list[str]:
        """Lines for the run's log: the nodes used, those left out and why."""

    def close(self) -> None: ...


def failure_outcome(task: GradeTask, err: BaseException, **kw) -> GradeOutcome:
    return GradeOutcome(key=task.key, failure=f"{type(err).__name__}: {err}", error_type=type(err).__name__, **kw)


def raise_for_failure(outcome: GradeOutcome) -> GradeOutcome:
    """For one-shot callers (`check`): a failed outcome raises (UserError stays a UserError,
    so bad input still exits 2)."""
    if outcome.grade is not None:
        return outcome
    message = outcome.failure or "grading failed"
    if outcome.error_type == "UserError":
        raise UserError(message.removeprefix("UserError: "))
    raise RuntimeError(message)


__all__ = ["Executor", "ExecutorStatus", "failure_outcome", "raise_for_failure"]
