"""`--executor ray`: every grading step a Ray task with explicit resources, across nodes.

The driver probes the nodes (ray_nodes), then for each task submits its steps in order:
a compile step (a core and 2.6 GB of Ray's memory resource), then the run step (num_gpus=1 on
CUDA; on CPU the node's one `kg_timing` when it times) placed preferably on the node that
compiled it (its cache holds the build), falling back to any usable node. Tasks travel as
content (a put object per task); results stream back through ray.wait as they complete, and
only the driver writes the store. A worker or node that dies mid-step: Ray reruns the step
elsewhere, at most `max_retries` times. An exception inside a step is kernelgrade's fault
and is not retried (the candidate's faults are verdicts inside the grade, never exceptions).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from harness.common.errors import UserError
from harness.executors.base import ExecutorStatus
from harness.executors.content import relocate, unpack, with_content
from harness.executors.node import NodeInfo, local_node
from harness.executors.ray_nodes import NODE_ID_LABEL, ClusterView, admit, describe, initial_plan, probe_all, refresh
from harness.executors.schedule import cluster_level, needs_of, ray_options
from harness.executors.tasks import GradeOutcome, GradeTask, Placement, Step, StepResult, steps_for

log = logging.getLogger(__name__)

#: Reruns of a step whose worker or node died (Ray's max_retries); then the task fails.
MAX_RETRIES = 3
#: How often the driver looks for nodes that joined or died.
REFRESH_S = 5.0
#: How long the pending work may have no usable node alive before it fails.
ORPHAN_S = 120.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'kernelgrade[ray]' (ray 2.x) on the driver "
                        "and on every node") from None
    return ray


@dataclass
class _Job:
    task: GradeTask
    steps: list[Step]
    future: Future
    payload: object = None
    index: int = 0
    done: list[Placement] = field(default_factory=list)
    busy_s: float = 0.0
    start: float = field(default_factory=time.perf_counter)


class RayExecutor:
    name = "ray"

    def __init__(self, *, address: str | None = "auto", level: str, device: str, timing: bool = True,
                 cache_dir: str | Path | None = None, max_retries: int = MAX_RETRIES, probe_timeout_s: float = 120.0,
                 log_to_driver: bool = False) -> None:
        ray = self._ray = import_ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            ray.init(address=address, log_to_driver=log_to_driver, namespace="kernelgrade")
        self.cache_dir = str(cache_dir) if cache_dir else None
        self.max_retries = max_retries
        self.device = device
        self.view = ClusterView(needs=set(), driver=local_node())
        head, silent = probe_all(ray, self.view, cache_dir=self.cache_dir, timeout_s=probe_timeout_s)
        infos = list(self.view.infos.values())
        self.level = cluster_level(level, device, infos, self.view.resources)  # type: ignore[arg-type]
        self.view.needs = needs_of(self.level, device, timing=timing)  # type: ignore[arg-type]
        initial_plan(self.view, head, silent)
        for line in describe(self.view):
            log.info("%s", line)
        from harness.executors.work import run_remote_step

        self._remote = ray.remote(run_remote_step)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._incoming: list[_Job] = []
        self._refs: dict[object, _Job] = {}
        self._done_by_node: Counter = Counter()
        self._in_flight = 0
        self._closing = False
        self._orphaned_since: float | None = None
        self._pump_thread = threading.Thread(target=self._pump, name="ray-pump", daemon=True)
        self._pump_thread.start()

    # ------------------------------------------------------------ public

    @property
    def excluded(self) -> dict[str, str]:
        """node label -> why it gets no tasks."""
        return dict(self.view.plan.excluded) if self.view.plan else {}

    def submit(self, task: GradeTask) -> Future[GradeOutcome]:
        future: Future[GradeOutcome] = Future()
        job = _Job(task=with_content(task), steps=steps_for(task), future=future)
        with self._lock:
            self._in_flight += 1
            self._incoming.append(job)
        self._wake.set()
        return future

    def map_grades(self, tasks: Iterable[GradeTask]) -> Iterator[GradeOutcome]:
        futures = [self.submit(t) for t in tasks]
        for future in as_completed(futures):
            yield future.result()

    def grade(self, task: GradeTask) -> GradeOutcome:
        return self.submit(task).result()

    def status(self) -> ExecutorStatus:
        with self._lock:
            by_node: Counter = Counter(self.view.label(j.done[-1].node_id) for j in self._refs.values() if j.done)
            return ExecutorStatus(executor="ray", nodes=[self.view.label(n) for n in self.view.usable_alive()],
                                  in_flight=self._in_flight, in_flight_by_node=dict(by_node),
                                  done_by_node=Counter(self._done_by_node), excluded=self.excluded)

    def describe(self) -> list[str]:
        return describe(self.view)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._pump_thread.join(timeout=30)
        with self._lock:
            left = list(self._refs)
        for ref in left:
            self._ray.cancel(ref, force=True)
        if self._owns:
            self._ray.shutdown()

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ the pump

    def _submit_step(self, job: _Job) -> None:
        step = job.steps[job.index]
        opts = ray_options(step.need) | {"max_retries": self.max_retries, "retry_exceptions": False,
                                         "name": f"kernelgrade-{step.name}"}
        selector = self.view.selector()
        prev = job.done[-1].node_id if job.done else None
        if prev and prev in self.view.usable_alive():
            # The node that compiled it holds the build in its cache; any usable node will do.
            opts |= {"label_selector": {NODE_ID_LABEL: prev}, "fallback_strategy": [{"label_selector": selector}]}
        else:
            opts["label_selector"] = selector
        if job.payload is None:
            job.payload = self._ray.put(job.task)
        last = job.index == len(job.steps) - 1
        ref = self._remote.options(**opts).remote(job.payload, step, self.cache_dir, last=last)
        with self._lock:
            self._refs[ref] = job

    def _finish(self, job: _Job, outcome: GradeOutcome) -> None:
        outcome.wall_s = time.perf_counter() - job.start
        outcome.busy_s = job.busy_s
        with self._lock:
            self._in_flight -= 1
        job.future.set_result(outcome)

    def _fail(self, job: _Job, message: str, error_type: str | None = None) -> None:
        log.warning("grading %s failed: %s", job.task.key, message)
        self._finish(job, GradeOutcome(key=job.task.key, failure=message, error_type=error_type,
                                       steps=list(job.done), where=job.done[-1] if job.done else None))

    def _collect(self, ref, job: _Job) -> None:
        ray = self._ray
        try:
            res: StepResult = ray.get(ref)
        except ray.exceptions.RayTaskError as err:  # raised inside the step: kernelgrade's fault, not retried
            cause = getattr(err, "cause", None) or err
            self._fail(job, f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1][:300]}",
                       type(cause).__name__)
            return
        except ray.exceptions.RayError as err:  # the worker or node died more than max_retries times
            self._fail(job, f"infrastructure: {type(err).__name__}: {str(err).splitlines()[0][:300]} "
                            f"(after up to {self.max_retries} retries)")
            return
        expected = self.view.reference_fingerprint()
        if res.where.fingerprint != expected:
            self._fail(job, f"step {res.step} ran on {res.where.node} whose toolchain differs "
                            f"({res.where.fingerprint} vs {expected}): result not used")
            return
        job.done.append(res.where)
        job.busy_s += res.wall_s
        with self._lock:
            self._done_by_node[self.view.label(res.where.node_id)] += 1
        job.index += 1
        if job.index < len(job.steps):
            self._submit_step(job)
            return
        grade = res.grade
        if job.task.artifacts and res.bundle is not None and res.node_root and job.task.has_kernel():
            dest = Path(job.task.artifacts)
            unpack(res.bundle, dest)
            grade = relocate(grade, res.node_root, dest, res.node_logs)
        self._finish(job, GradeOutcome(key=job.task.key, grade=grade, where=res.where, steps=list(job.done)))

    def _look_around(self) -> None:
        refresh(self._ray, self.view, cache_dir=self.cache_dir)
        if self.view.pending:
            ready, _ = self._ray.wait(list(self.view.pending), num_returns=len(self.view.pending), timeout=0)
            for ref in ready:
                nid = self.view.pending.pop(ref)
                try:
                    admit(self.view, nid, NodeInfo.model_validate(self._ray.get(ref)))
                except Exception as err:  # a node that cannot run the probe gets nothing
                    self.view.plan.excluded[nid[:8]] = f"probe failed: {type(err).__name__}"
        if self._refs and not self.view.usable_alive():
            self._orphaned_since = self._orphaned_since or time.monotonic()
            if time.monotonic() - self._orphaned_since > ORPHAN_S:
                with self._lock:
                    orphans, self._refs = self._refs, {}
                for ref, job in orphans.items():
                    self._ray.cancel(ref, force=True)
                    self._fail(job, f"no usable node alive for {ORPHAN_S:g} s")
        else:
            self._orphaned_since = None

    def _pump(self) -> None:
        ray = self._ray
        last_look = time.monotonic()
        while not self._closing:
            with self._lock:
                incoming, self._incoming = self._incoming, []
            for job in incoming:
                try:
                    self._submit_step(job)
                except Exception as err:
                    self._fail(job, f"could not submit: {type(err).__name__}: {err}")
            if time.monotonic() - last_look > REFRESH_S:
                last_look = time.monotonic()
                try:
                    self._look_around()
                except Exception:  # the cluster view is best effort; the work goes on
                    log.exception("ray: looking at the cluster failed")
            if not self._refs:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=0.2)
            if ready:
                ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
            for ref in ready:
                with self._lock:
                    job = self._refs.pop(ref, None)
                if job is None:
                    continue
                try:
                    self._collect(ref, job)
                except Exception as err:  # never leave a future unset
                    log.exception("ray: collecting %s failed", job.task.key)
                    if not job.future.done():
                        self._fail(job, f"internal: {type(err).__name__}: {err}")


__all__ = ["MAX_RETRIES", "RayExecutor", "import_ray"]
