"""Model calls spread over worker processes, for when one process's GIL is the limit.

An SDK call costs about 1.3 ms of Python: building the request, parsing HTTP and the response
models. With many fast calls in flight (a local vLLM, a fixture server), one process is bound
by its GIL while other cores idle, and the harness's own work (the store, grading) waits for
the same lock. benchmarks/concurrency.py measured this on 2 cores at concurrency 64: the bare
SDK itself reached only 0.54 of the ideal throughput, with one core mostly idle.

A pool moves the SDK calls, retries included, into worker processes
(harness/models/call_worker.py). The driver keeps everything else: it stores every answer
before grading it, as before. Workers are harness code with the driver's environment (they
need the API keys); they are not a sandbox and never see a model's code. A worker that dies
fails its calls in flight as errors, which --resume redoes.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

from harness.models.base import ChatRequest, Completion, ModelCallError, ModelClient
from harness.models.registry import ModelSpec

AUTO_MIN_CONCURRENCY = 32
"""Below this many calls in flight, one process keeps up (measured: 0.98 of the bare SDK at 16)."""
CALLS_PER_PROCESS = 16
MAX_PROCESSES = 8


def auto_processes(concurrency: int, cpus: int | None = None) -> int:
    """Worker processes for `--call-processes auto`: none below AUTO_MIN_CONCURRENCY or on one
    core, else one per CALLS_PER_PROCESS calls in flight, at most one per core."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if cpus < 2 or concurrency < AUTO_MIN_CONCURRENCY:
        return 0
    return max(min(cpus, concurrency // CALLS_PER_PROCESS, MAX_PROCESSES), 1)


class _Worker:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lock = threading.Lock()
        self.pending: dict[int, Future] = {}
        self.dead: str | None = None


class CallPool:
    """`processes` workers, each making calls in threads; calls go to the least busy one."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a call pool needs at least one process")
        env = dict(os.environ)
        # The workers import this very harness, installed or run from a checkout; started in its
        # folder, so a `harness` package in the user's folder cannot stand in for it.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._jobs = itertools.count()
        self.workers = [_Worker(subprocess.Popen([sys.executable, "-m", "harness.models.call_worker"], cwd=root,
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))
                        for _ in range(processes)]
        for worker in self.workers:
            threading.Thread(target=self._read, args=(worker,), daemon=True, name="call-pool-reader").start()

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    @property
    def alive(self) -> bool:
        return any(w.dead is None for w in self.workers)

    def call(self, spec: ModelSpec, timeout_s: float, attempts: int, request: ChatRequest) -> Completion:
        future: Future = Future()
        job = next(self._jobs)  # atomic: itertools.count is one C call
        message = pickle.dumps((job, spec, timeout_s, attempts, request), pickle.HIGHEST_PROTOCOL)
        for worker in sorted(self.workers, key=lambda w: len(w.pending)):
            with worker.lock:
                if worker.dead is not None:
                    continue
                worker.pending[job] = future
                try:
                    assert worker.proc.stdin is not None
                    worker.proc.stdin.write(message)
                    worker.proc.stdin.flush()
                except OSError:
                    worker.pending.pop(job, None)
                    continue  # it died: its reader fails what it had; try the next one
            return future.result()
        raise ModelCallError("other", "every model-call worker process has exited")

    def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        try:
            while True:
                job, ok, payload = pickle.load(worker.proc.stdout)
                with worker.lock:
                    future = worker.pending.pop(job)
                if ok:
                    future.set_result(payload)
                else:
                    kind, message, attempts = payload
                    future.set_exception(ModelCallError(kind, message, attempts=attempts))
        except EOFError:
            pass
        except Exception:  # an unreadable reply: nothing more from this worker can be trusted
            worker.proc.kill()
        code = worker.proc.wait()
        with worker.lock:
            worker.dead = f"model-call worker process {worker.proc.pid} exited (code {code})"
            lost, worker.pending = worker.pending, {}
        for future in lost.values():
            future.set_exception(ModelCallError("other", worker.dead))

    def close(self) -> None:
        for worker in self.workers:
            with worker.lock:
                try:
                    assert worker.proc.stdin is not None
                    worker.proc.stdin.close()  # a worker ends when its stdin does
                except OSError:
                    pass
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()


class PooledClient:
    """A ModelClient whose calls are made in a CallPool, with the same settings as `local`
    (the client the driver would have called itself)."""

    def __init__(self, pool: CallPool, local: ModelClient, spec: ModelSpec, *, timeout_s: float,
                 attempts: int) -> None:
        self.provider, self.model = local.provider, local.model
        self.takes_temperature: bool = getattr(local, "takes_temperature", True)
        self._pool, self._spec, self._timeout_s, self._attempts = pool, spec, timeout_s, attempts

    def complete(self, request: ChatRequest) -> Completion:
        return self._pool.call(self._spec, self._timeout_s, self._attempts, request)


_shared: dict[tuple[int, str], CallPool] = {}
_shared_lock = threading.Lock()


def shared_pool(processes: int) -> CallPool:
    """One pool per size for the life of this process: its start (importing the SDKs, about a
    second) is paid once, not once per run. A changed environment (another key, another
    proxy) gets fresh workers, which see it; the stale ones are closed."""
    digest = hashlib.sha256(repr(sorted(os.environ.items())).encode()).hexdigest()
    with _shared_lock:
        for key in [k for k in _shared if k[1] != digest]:
            _shared.pop(key).close()
        pool = _shared.get((processes, digest))
        if pool is None or not pool.alive:
            pool = _shared[(processes, digest)] = CallPool(processes)
        return pool


def shared_worker_pids() -> list[int]:
    """The worker processes of this process's shared pools (benchmarks count their CPU)."""
    with _shared_lock:
        return [pid for pool in _shared.values() for pid in pool.pids]


@atexit.register
def _close_shared() -> None:
    for pool in _shared.values():
        pool.close()
