"""Batch mode (`eval --batch`, issue 20): the run's one-shot trials through Anthropic Message
Batches or the OpenAI Batch API, at batch prices.

Per model: the trials that have no answer and are in no live batch are submitted (in chunks
of harness.models.batch.MAX_REQUESTS), each batch recorded with its items and prompts before
the provider is asked and its id as soon as it answers (harness/store/batches.py). Then every
live batch is polled; when one ends its results are read and stored one by one, and graded as
they come. An item that errored, expired or was canceled, and one the results do not mention,
becomes an error on its trial, which `eval --resume` submits again. `--resume` re-attaches to
batches still running (or still being submitted when the process died) and never submits a
trial that is in one.

harness/workflows/evaluate.py branches here on the run's mode; it passes what this module
needs (options, specs, cases, its grading function), so nothing here imports it.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from harness.common.errors import UserError
from harness.inputs.cases import Case
from harness.models.base import ModelCallError
from harness.models.batch import MAX_REQUESTS, BatchClient, make_batch_client, now_unix
from harness.models.caching import cached_request
from harness.models.registry import ModelSpec
from harness.prompts.build import build_prompt
from harness.store.batches import BatchRow, BatchStore
from harness.store.db import Store, TrialRecord

log = logging.getLogger(__name__)

BATCH_PROVIDERS = ("anthropic", "openai")
#: Seconds between polls of a running batch (KERNELGRADE_BATCH_POLL_S overrides; tests use ~0).
POLL_S = 30.0

Grader = Callable[[TrialRecord, Case, str], str]


def check_batch_options(opts, specs: list[ModelSpec]) -> None:
    """Refuse what batch mode cannot do, before anything is stored or sent."""
    if opts.agent:
        raise UserError("--batch: one-shot only (an agent's next call needs its last answer; leave out --agent)")
    if opts.max_cost is not None:
        raise UserError("--batch with --max-cost: a submitted batch cannot be stopped part way (leave out one)")
    for spec in specs:
        if spec.provider not in BATCH_PROVIDERS:
            raise UserError(f"--model {spec.name}: --batch needs an Anthropic or OpenAI model (their batch APIs); "
                            f"{spec.provider} models have none")


def _poll_interval() -> float:
    return float(os.environ.get("KERNELGRADE_BATCH_POLL_S", POLL_S))


class _BatchRun:
    """One session of a batch run: submit, re-attach, poll, store, grade."""

    def __init__(self, run_id: str, store: Store, progress, *, opts, specs: list[ModelSpec],
                 cases: dict[str, Case], grade: Grader, clients: dict[str, BatchClient]) -> None:
        self.run_id, self.store, self.progress, self.opts = run_id, store, progress, opts
        self.specs, self.cases, self.grade, self.clients = specs, cases, grade, clients
        self.batches = BatchStore(store)
        self.trials = {t.id: t for t in store.trials(run_id)}
        self.skill_block = (store.get_run(run_id).skill or {}).get("block", "")
        self.pool = ThreadPoolExecutor(max(1, opts.concurrency), thread_name_prefix="grade")
        self.grading: list[tuple[TrialRecord, Future]] = []

    # -- grading as results arrive -------------------------------------------------
    def _grade_later(self, trial_id: int, text: str) -> None:
        trial = self.trials[trial_id]
        self.grading.append((trial, self.pool.submit(self.grade, trial, self.cases[trial.case_id], text)))

    def _report_graded(self, *, wait: bool = False) -> None:
        keep = []
        for trial, future in self.grading:
            if not (wait or future.done()):
                keep.append((trial, future))
                continue
            try:
                outcome = future.result()
            except Exception as err:  # a kernelgrade bug: record it, keep the run going
                log.exception("grading trial %s crashed", trial.id)
                self.store.record_error(trial.id, f"internal: {type(err).__name__}: {err}", calls=0)
                outcome = "error"
            self.progress.on_trial(trial, outcome)
        self.grading = keep

    # -- submit ------------------------------------------------------------------
    def _items(self, trials: list[TrialRecord], client: BatchClient):
        temperature = self.opts.temperature if getattr(client, "takes_temperature", True) else None
        items, prompts, requests = [], {}, []
        for t in trials:
            block = self.skill_block if t.arm == "with_skill" else None
            prompt = build_prompt(self.cases[t.case_id], block, device=self.opts.device,
                                  answer_format=self.opts.answer_format)
            request = cached_request(prompt.request(max_tokens=self.opts.max_tokens, temperature=temperature), block,
                                     enabled=self.opts.prompt_cache)
            custom_id = f"trial-{t.id}"
            items.append((custom_id, t.id))
            requests.append((custom_id, request))
            prompts[t.id] = (prompt.model_dump(), prompt.sha256,
                             request.model_dump(exclude={"system", "user"}) | {"batch": True})
        return items, prompts, requests

    def submit(self, spec: ModelSpec, trials: list[TrialRecord]) -> None:
        client = self.clients[spec.name]
        items, prompts, requests = self._items(trials, client)
        token = f"kg-{secrets.token_hex(8)}"
        row = self.batches.open(self.run_id, spec.name, client.provider, token, now_unix(), items, prompts)
        try:
            batch_id = client.submit(requests, token=token)
        except ModelCallError as err:
            found = self._find(row, client, len(items)) if err.retryable else None
            if found is None:
                log.warning("%s: batch submission failed: %s", spec.name, err)
                for custom_id, _ in items:
                    if trial_id := self.batches.store_result(row, custom_id, error=f"batch submission failed: {err}"):
                        self.progress.on_trial(self.trials[trial_id], "error")
                self.batches.close(row, "abandoned")
                return
            batch_id = found
        self.batches.attach(row, batch_id)
        log.info("%s: batch %s submitted (%d trials)", spec.name, batch_id, len(items))

    def _find(self, row: BatchRow, client: BatchClient, count: int) -> str | None:
        """The provider's id of a batch whose submission was cut short, or None if it never arrived."""
        try:
            return client.find(row.token, since=row.created_unix, count=count)
        except ModelCallError as err:
            raise UserError(f"batch {row.token} of run {self.run_id}: cannot tell whether {client.provider} "
                            f"received it ({err}); resume again later") from None

    def reattach(self) -> None:
        for row in self.batches.of_run(self.run_id, live=True):
            if row.batch_id is not None:
                continue
            found = self._find(row, self.clients[row.model], len(self.batches.items(row)))
            if found is None:  # never reached the provider: its trials are submitted afresh
                self.batches.close(row, "abandoned")
            else:
                self.batches.attach(row, found)
                log.info("%s: re-attached to batch %s", row.model, found)

    # -- poll and collect ----------------------------------------------------------
    def poll(self, row: BatchRow) -> None:
        client = self.clients[row.model]
        try:
            state = client.poll(row.batch_id)
        except ModelCallError as err:
            if err.retryable:
                log.warning("batch %s: poll failed (%s); polling again", row.batch_id, err)
                return
            raise
        self.batches.note(row, state.status, state.counts)
        if not state.ended:
            return
        try:
            for result in client.results(row.batch_id):
                trial_id = self.batches.store_result(row, result.custom_id, completion=result.completion,
                                                     error=result.error)
                if trial_id is None:
                    continue
                if result.completion is not None:
                    self._grade_later(trial_id, result.completion.text)
                else:
                    self.progress.on_trial(self.trials[trial_id], "error")
        except ModelCallError as err:
            if err.retryable:  # what was stored stays stored; the rest is read again next poll
                log.warning("batch %s: reading results failed (%s); reading again", row.batch_id, err)
                return
            raise
        why = f": {state.detail}" if state.detail else ""
        for custom_id, trial_id in self.batches.items(row, state="submitted").items():
            if self.batches.store_result(row, custom_id, error=f"batch {row.batch_id} ended ({state.status}) "
                                                              f"without a result for this trial{why}"):
                self.progress.on_trial(self.trials[trial_id], "error")
        self.batches.close(row, "collected")

    def run(self) -> None:
        for t in self.trials.values():  # answered in an earlier session, not graded yet
            if t.status == "answered" and t.grade is None and t.completion is not None:
                self._grade_later(t.id, t.completion.text)
        self.reattach()
        in_flight = self.batches.trials_in_flight(self.run_id)
        for spec in self.specs:
            todo = [t for t in self.trials.values()
                    if t.model == spec.name and t.status != "answered" and t.id not in in_flight]
            for start in range(0, len(todo), MAX_REQUESTS):
                self.submit(spec, todo[start:start + MAX_REQUESTS])
        while live := self.batches.of_run(self.run_id, live=True):
            for row in live:
                self.poll(row)
            self._report_graded()
            if self.batches.of_run(self.run_id, live=True):
                time.sleep(_poll_interval())
        self._report_graded(wait=True)


def execute_batch(run_id: str, store: Store, progress, *, opts, specs: list[ModelSpec], cases: dict[str, Case],
                  grade: Grader, clients: dict[str, BatchClient] | None = None) -> str:
    """Run or resume a batch-mode run; returns the final run status (finished | interrupted)."""
    clients = clients or {s.name: make_batch_client(s, timeout_s=opts.timeout_s) for s in specs}
    session = _BatchRun(run_id, store, progress, opts=opts, specs=specs, cases=cases, grade=grade, clients=clients)
    todo = sum(1 for t in session.trials.values() if t.status != "answered" or t.grade is None)
    progress.on_start(todo)
    store.set_run_status(run_id, "running")
    try:
        session.run()
    except BaseException:
        # The provider keeps working on submitted batches; --resume re-attaches to them.
        store.set_run_status(run_id, "interrupted")
        session.pool.shutdown(wait=False, cancel_futures=True)
        raise
    session.pool.shutdown(wait=True)
    store.set_run_status(run_id, "finished")
    return "finished"


__all__ = ["BATCH_PROVIDERS", "check_batch_options", "execute_batch"]
