"""`--executor local`: threads on this machine, one lane per GPU, compiles bounded by memory.

Every task runs its steps (tasks.plan_steps) in a thread. Compile and plain CPU steps take a
slot of the shared pool (schedule.compile_slots: cores and memory); a GPU step takes one GPU's
lane, a CPU timing a CPU-timing lane (schedule.LaneBook). A lane that pins (a GPU's
CUDA_VISIBLE_DEVICES, a core set) runs its steps in a process of its own, started with that
environment: the grading code there, and the sandboxed children it starts (the sandbox passes
CUDA_VISIBLE_DEVICES and OMP_NUM_THREADS through its allowlist; core affinity is inherited),
see only the lane's GPU or cores. Nothing in harness/execute has to know.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Callable, Iterable, Iterator

from harness.executors.base import ExecutorStatus, failure_outcome
from harness.executors.schedule import Lane, LaneBook, compile_slots, cpu_timing_lanes, gpu_lanes
from harness.executors.tasks import GradeOutcome, GradeTask, StepResult, steps_for
from harness.executors.work import run_local_step

log = logging.getLogger(__name__)

StepFn = Callable[..., StepResult]


def available_memory() -> int | None:
    """MemAvailable in bytes, None where /proc/meminfo is not readable."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _enter_lane(env: tuple[tuple[str, str], ...], cpus: tuple[int, ...] | None) -> None:
    """Initializer of a lane's process: its pin, before anything imports torch or CUDA."""
    os.environ.update(dict(env))
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


class LocalExecutor:
    """Threads plus pinned lane processes on this machine."""

    name = "local"

    def __init__(self, *, lanes: list[Lane] | None = None, slots: int | None = None,
                 step_fn: StepFn = run_local_step, processes: bool = True) -> None:
        self.slots = slots or compile_slots(os.cpu_count() or 1, available_memory())
        self.lanes = list(lanes) if lanes is not None else cpu_timing_lanes(list(range(os.cpu_count() or 1)))
        self.level: str | None = None
        """The level resolved for this batch (set by make_executor)."""
        self._book = LaneBook(self.lanes, self.slots)
        self._cond = threading.Condition()
        self._step_fn = step_fn
        self._processes = processes
        self._pool = ThreadPoolExecutor(max_workers=self.slots + len(self.lanes), thread_name_prefix="grade")
        self._procs: dict[str, ProcessPoolExecutor] = {}
        self._running: dict[str, str] = {}
        self._in_flight = 0
        self.done_by_lane: Counter = Counter()

    # ------------------------------------------------------------ lanes

    def _acquire(self, need) -> Lane:
        with self._cond:
            while (lane := self._book.acquire(need)) is None:
                self._cond.wait()
            return lane

    def _release(self, lane: Lane) -> None:
        with self._cond:
            self._book.release(lane)
            self._cond.notify_all()

    def _process(self, lane: Lane) -> ProcessPoolExecutor:
        with self._cond:
            proc = self._procs.get(lane.name)
            if proc is None:
                proc = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_enter_lane, initargs=(lane.env, lane.cpus))
                self._procs[lane.name] = proc
            return proc

    def _run_on(self, lane: Lane, task: GradeTask, step, last: bool) -> StepResult:
        if lane.pinned and self._processes:
            return self._process(lane).submit(self._step_fn, task, step, lane, last=last).result()
        return self._step_fn(task, step, lane, last=last)

    # ------------------------------------------------------------ tasks

    def _grade(self, task: GradeTask) -> GradeOutcome:
        start = time.perf_counter()
        steps = steps_for(task)
        missing = [s.need for s in steps if not self._book.can_serve(s.need)]
        if missing:
            return GradeOutcome(key=task.key, failure=f"this machine has no lane for a {missing[0]} step "
                                                      "(no GPU visible, or none picked with --gpus)",
                                error_type="UserError")
        results: list[StepResult] = []
        try:
            for i, step in enumerate(steps):
                lane = self._acquire(step.need)
                with self._cond:
                    self._running[lane.name] = task.key
                try:
                    results.append(self._run_on(lane, task, step, last=i == len(steps) - 1))
                finally:
                    with self._cond:
                        self._running.pop(lane.name, None)
                        self.done_by_lane[lane.name] += 1
                    self._release(lane)
        except Exception as err:  # kernelgrade's fault or the machine's, never the candidate's
            log.exception("grading %s failed", task.key)
            return failure_outcome(task, err, steps=[r.where for r in results],
                                   wall_s=time.perf_counter() - start)
        last = results[-1]
        return GradeOutcome(key=task.key, grade=last.grade, where=last.where, steps=[r.where for r in results],
                            wall_s=time.perf_counter() - start, busy_s=sum(r.wall_s for r in results))

    def submit(self, task: GradeTask) -> Future[GradeOutcome]:
        with self._cond:
            self._in_flight += 1
        future = self._pool.submit(self._grade, task)

        def done(_: Future) -> None:
            with self._cond:
                self._in_flight -= 1

        future.add_done_callback(done)
        return future

    def map_grades(self, tasks: Iterable[GradeTask]) -> Iterator[GradeOutcome]:
        futures = [self.submit(t) for t in tasks]
        for future in as_completed(futures):
            yield future.result()

    def grade(self, task: GradeTask) -> GradeOutcome:
        return self.submit(task).result()

    def status(self) -> ExecutorStatus:
        with self._cond:
            host = socket.gethostname()
            busy = {name: 1 for name in self._running}
            return ExecutorStatus(executor="local", nodes=[host], in_flight=self._in_flight,
                                  in_flight_by_node=busy, done_by_node=Counter(self.done_by_lane))

    def describe(self) -> list[str]:
        kinds = Counter(lane.kind for lane in self.lanes)
        gpus = [lane.gpu or "default" for lane in self.lanes if lane.kind == "gpu"]
        line = f"local: {self.slots} compile slot(s)"
        if gpus:
            line += f", {len(gpus)} GPU lane(s) ({', '.join(gpus)}), one run at a time on each"
        if kinds.get("cpu_timing"):
            line += f", {kinds['cpu_timing']} CPU timing lane(s)"
        return [line]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for proc in self._procs.values():
            proc.shutdown(wait=True, cancel_futures=True)
        self._procs.clear()

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def local_lanes(*, level: str, device: str, gpus: list[str] | None, visible: Callable[[], list[str]],
                cpu_lanes: int = 1, cores: list[int] | None = None) -> list[Lane]:
    """The lanes for a batch (pure but for `visible`, asked only for run-level CUDA work):
    one per picked GPU, and the CPU-timing lanes. No GPU listed but CUDA work asked for: one
    unpinned GPU lane (what torch sees), so runs still go one at a time."""
    cores = cores if cores is not None else list(range(os.cpu_count() or 1))
    lanes = cpu_timing_lanes(cores, cpu_lanes)
    if level == "run" and device == "cuda":
        from harness.executors.gpus import select_gpus

        picked = select_gpus(visible(), gpus)
        lanes += gpu_lanes(picked) if picked else [Lane(name="gpu:default", kind="gpu")]
    elif gpus:
        log.info("--gpus %s: no GPU step at level %s on %s", ",".join(gpus), level, device)
    return lanes


__all__ = ["LocalExecutor", "available_memory", "local_lanes"]
