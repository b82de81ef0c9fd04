"""Model calls in worker processes (harness/models/call_pool.py), against the labelled fixture
OpenAI-protocol server through the real `openai` SDK: the same requests and answers as calls
made in the driver, failures kept as errors, and no worker outliving its driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.models.base import ChatRequest, ModelCallError
from harness.models.call_pool import CallPool, PooledClient, auto_processes, shared_pool
from harness.models.registry import ModelSpec, make_client
from harness.store.db import Store
from harness.workflows.evaluate import EvalOptions, execute, start_eval
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "tests/fixtures/skills/valid-skill"


def _spec(server: FakeOpenAIServer) -> ModelSpec:
    return ModelSpec(name="fake", provider="openai-compat", model_id="fake-model", base_url=server.base_url)


@pytest.fixture
def pool():
    pool = CallPool(2)
    yield pool
    pool.close()


def _wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_auto_uses_processes_only_for_many_calls_on_several_cores() -> None:
    assert auto_processes(16, cpus=16) == 0  # one process keeps up
    assert auto_processes(64, cpus=1) == 0  # nowhere to spread to
    assert auto_processes(32, cpus=2) == 2
    assert auto_processes(64, cpus=2) == 2  # at most one per core
    assert auto_processes(64, cpus=16) == 4  # one per 16 calls in flight
    assert auto_processes(1024, cpus=64) == 8


def test_pooled_calls_send_and_return_what_the_driver_would(pool: CallPool) -> None:
    requests = [ChatRequest(system="s", user=f"{'<skill> ' if i % 2 else ''}question {i}", max_tokens=64,
                            temperature=0.5) for i in range(24)]
    with FakeOpenAIServer(delay_s=0.02) as server:
        spec = _spec(server)
        local = make_client(spec, timeout_s=30, attempts=2)
        pooled = PooledClient(pool, local, spec, timeout_s=30, attempts=2)
        assert (pooled.provider, pooled.model, pooled.takes_temperature) == (local.provider, local.model, True)
        with ThreadPoolExecutor(12) as threads:
            from_pool = list(threads.map(pooled.complete, requests))
        sent_by_pool = list(server.requests)
        server.requests.clear()
        from_driver = [local.complete(r) for r in requests]
        sent_by_driver = list(server.requests)
    key = lambda body: json.dumps(body, sort_keys=True)  # noqa: E731
    assert sorted(map(key, sent_by_pool)) == sorted(map(key, sent_by_driver))
    strip = lambda c: c.model_dump(exclude={"latency_s"})  # noqa: E731
    assert [strip(c) for c in from_pool] == [strip(c) for c in from_driver]
    assert {c.text for c in from_pool} == {"Use sm_90.", 'Use cuda-capabilities = ["9.0"].'}
    assert all(c.latency_s >= 0.02 for c in from_pool)
    # Both workers took calls (the least busy one gets the next).
    assert all(w.proc.poll() is None for w in pool.workers)


@pytest.mark.parametrize("status,kind,attempts", [(400, "bad_request", 1), (500, "server", 2)])
def test_a_failed_call_is_the_same_error_with_its_attempts(pool: CallPool, status: int, kind: str,
                                                           attempts: int) -> None:
    with FakeOpenAIServer(fail_first=10, fail_status=status) as server:
        spec = _spec(server)
        pooled = PooledClient(pool, make_client(spec), spec, timeout_s=30, attempts=2)
        with pytest.raises(ModelCallError) as err:
            pooled.complete(ChatRequest(system="s", user="u"))
    assert err.value.kind == kind and err.value.attempts == attempts
    assert len(server.requests) == attempts


def test_a_dying_worker_fails_its_calls_and_the_others_go_on(pool: CallPool) -> None:
    with FakeOpenAIServer(delay_s=3.0) as server:
        spec = _spec(server)
        pooled = PooledClient(pool, make_client(spec), spec, timeout_s=30, attempts=1)
        with ThreadPoolExecutor(1) as threads:
            slow = threads.submit(pooled.complete, ChatRequest(system="s", user="u"))
            _wait_for(lambda: len(server.requests) == 1)
            (busy,) = [w for w in pool.workers if w.pending]
            busy.proc.kill()
            with pytest.raises(ModelCallError) as err:
                slow.result(timeout=10)
        assert err.value.kind == "other" and "exited" in str(err.value)
        server.delay_s = 0.0
        assert pooled.complete(ChatRequest(system="s", user="<skill>")).text.startswith("Use cuda")
        for worker in pool.workers:
            worker.proc.kill()
        _wait_for(lambda: not pool.alive)
        with pytest.raises(ModelCallError, match="every model-call worker process has exited"):
            pooled.complete(ChatRequest(system="s", user="u"))


def test_workers_end_with_their_driver_even_when_it_is_killed(tmp_path: Path) -> None:
    driver = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from harness.models.call_pool import CallPool\n"
        "pool = CallPool(2); print(*pool.pids, flush=True); time.sleep(600)") % str(REPO)],
        stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in driver.stdout.readline().split()]
        assert len(pids) == 2 and all(_running(p) for p in pids)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        _wait_for(lambda: not any(_running(p) for p in pids))
    finally:
        driver.kill()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_changed_environment_gets_fresh_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    first = shared_pool(1)
    assert shared_pool(1) is first
    monkeypatch.setenv("KG_TEST_KEY", "another")
    second = shared_pool(1)
    assert second is not first
    _wait_for(lambda: not first.alive)  # the stale pool is closed, not left running
    second.close()


def test_eval_through_worker_processes_stores_what_an_in_process_eval_does(tmp_path: Path) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"input": f"case {i}: which capability?", "expected": {"contains": "9.0"}}
                                           for i in range(6)]}))
    store = Store()
    stored = {}
    with FakeOpenAIServer(delay_s=0.01) as server:
        for processes in (0, 2):
            run_id = start_eval(EvalOptions(skill_dir=SKILL, cases_path=cases, models=["fake-model"],
                                            base_url=server.base_url, level="text", concurrency=8, runs=2,
                                            call_processes=processes), store)
            assert execute(run_id, store) == "finished"
            assert store.get_run(run_id).config["call_processes"] == processes
            stored[processes] = sorted(
                (t.case_id, t.arm, t.run_index, t.status, t.prompt_sha256, t.completion.text, t.grade.score.verdict)
                for t in store.trials(run_id))
    assert stored[0] == stored[2]
    assert len(stored[2]) == 24 and {row[-1] for row in stored[2]} == {"pass", "fail"}
    shared_pool(2).close()


def test_an_unreadable_reply_ends_that_worker_and_fails_its_calls() -> None:
    import itertools
    import threading

    from harness.models.call_pool import _Worker

    # A stand-in worker (labelled fixture) that answers garbage, then would hang for a minute.
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.buffer.read(1); "
                             "sys.stdout.buffer.write(b'not a pickle'); sys.stdout.flush(); time.sleep(60)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pool = CallPool.__new__(CallPool)
    pool._jobs, pool.workers = itertools.count(), [_Worker(proc)]
    threading.Thread(target=pool._read, args=(pool.workers[0],), daemon=True).start()
    spec = ModelSpec(name="fake", provider="openai-compat", model_id="m", base_url="http://127.0.0.1:9/v1")
    started = time.monotonic()
    with pytest.raises(ModelCallError, match="exited"):
        pool.call(spec, 5.0, 1, ChatRequest(system="s", user="u"))
    assert time.monotonic() - started < 30 and proc.returncode == -signal.SIGKILL
    assert not pool.alive
