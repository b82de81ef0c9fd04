"""Batch mode's tables beside the run: each submitted batch and the trials in it (issue 20).

A batch row is written, with its items, *before* the provider is asked (state `submitting`,
our own token); the provider's id follows once it answers (`running`). So a process killed at
any point leaves a row that a resume can re-attach to (by id, or by token through the
provider's list), and a trial in a live batch is never submitted again. Results are stored
one by one as they are read; a collected batch is `collected`, and a submission that never
reached the provider is `abandoned` (its trials are submitted afresh).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.models.base import Completion
from harness.store.db import Store, now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    model TEXT NOT NULL,             -- the run's model name
    provider TEXT NOT NULL,          -- anthropic | openai
    token TEXT NOT NULL UNIQUE,      -- ours: names the batch before the provider's id is known
    batch_id TEXT,                   -- the provider's id; NULL while submitting
    state TEXT NOT NULL,             -- submitting | running | collected | abandoned
    status TEXT,                     -- the provider's last word (in_progress, ended, expired, ...)
    counts TEXT,                     -- JSON: the provider's last request counts
    created TEXT NOT NULL,
    created_unix REAL NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_items (
    batch INTEGER NOT NULL REFERENCES batches(id),
    custom_id TEXT NOT NULL,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    state TEXT NOT NULL,             -- submitted | answered | error
    PRIMARY KEY (batch, custom_id)
);
CREATE INDEX IF NOT EXISTS batches_run ON batches (run_id, state);
"""

LIVE = ("submitting", "running")


@dataclass(frozen=True)
class BatchRow:
    id: int
    run_id: str
    model: str
    provider: str
    token: str
    batch_id: str | None
    state: str
    status: str | None
    created_unix: float


class BatchStore:
    """Batch rows of a Store, through its lock (Store.execute / Store.transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store._lock:
            store._db.executescript(_SCHEMA)

    def open(self, run_id: str, model: str, provider: str, token: str, created_unix: float,
             items: list[tuple[str, int]], prompts: dict[int, tuple[dict, str, dict]]) -> BatchRow:
        """Record a batch about to be submitted, its (custom id, trial id) items and each trial's
        prompt, all at once, before the provider is asked."""
        with self.store.transaction():
            cur = self.store.execute(
                "INSERT INTO batches (run_id, model, provider, token, state, created, created_unix, updated)"
                " VALUES (?,?,?,?, 'submitting', ?,?,?)", (run_id, model, provider, token, now(), created_unix, now()))
            row_id = int(cur.lastrowid)
            for custom_id, trial_id in items:
                self.store.execute("INSERT INTO batch_items VALUES (?,?,?, 'submitted')", (row_id, custom_id, trial_id))
                prompt, sha, request = prompts[trial_id]
                self.store.record_prompt(trial_id, prompt, sha, request)
        return self.get(row_id)

    def get(self, row_id: int) -> BatchRow:
        r = self.store.execute("SELECT * FROM batches WHERE id=?", (row_id,)).fetchone()
        return BatchRow(id=r["id"], run_id=r["run_id"], model=r["model"], provider=r["provider"], token=r["token"],
                        batch_id=r["batch_id"], state=r["state"], status=r["status"], created_unix=r["created_unix"])

    def of_run(self, run_id: str, *, live: bool = False) -> list[BatchRow]:
        sql = "SELECT id FROM batches WHERE run_id=?" + (f" AND state IN {LIVE}" if live else "") + " ORDER BY id"
        return [self.get(r[0]) for r in self.store.execute(sql, (run_id,)).fetchall()]

    def attach(self, row: BatchRow, batch_id: str) -> BatchRow:
        self.store.execute("UPDATE batches SET batch_id=?, state='running', updated=? WHERE id=?",
                           (batch_id, now(), row.id))
        return self.get(row.id)

    def note(self, row: BatchRow, status: str, counts: dict) -> None:
        self.store.execute("UPDATE batches SET status=?, counts=?, updated=? WHERE id=?",
                           (status, json.dumps(counts), now(), row.id))

    def close(self, row: BatchRow, state: str) -> None:
        """`collected` (every item has its outcome) or `abandoned` (never reached the provider)."""
        self.store.execute("UPDATE batches SET state=?, updated=? WHERE id=?", (state, now(), row.id))

    def items(self, row: BatchRow, *, state: str | None = None) -> dict[str, int]:
        """custom id -> trial id."""
        sql = "SELECT custom_id, trial_id FROM batch_items WHERE batch=?" + (" AND state=?" if state else "")
        args = (row.id, state) if state else (row.id,)
        return {r[0]: r[1] for r in self.store.execute(sql, args).fetchall()}

    def trials_in_flight(self, run_id: str) -> set[int]:
        """Trials in a batch still submitting or running, waiting for their result."""
        rows = self.store.execute(
            f"SELECT i.trial_id FROM batch_items i JOIN batches b ON b.id = i.batch WHERE b.run_id=?"
            f" AND b.state IN {LIVE} AND i.state='submitted'", (run_id,)).fetchall()
        return {r[0] for r in rows}

    def store_result(self, row: BatchRow, custom_id: str, *, completion: Completion | None = None,
                     error: str | None = None) -> int | None:
        """One item's outcome with its trial's answer or error, in one transaction; the trial
        id, or None when the item is not ours or was stored already (a re-read after a crash)."""
        with self.store.transaction():
            found = self.store.execute("SELECT trial_id, state FROM batch_items WHERE batch=? AND custom_id=?",
                                       (row.id, custom_id)).fetchone()
            if found is None or found["state"] != "submitted":
                return None
            trial_id = found["trial_id"]
            if completion is not None:
                self.store.record_completion(trial_id, completion)
            else:
                self.store.record_error(trial_id, error or "batch item failed", calls=1)
            self.store.execute("UPDATE batch_items SET state=? WHERE batch=? AND custom_id=?",
                               ("answered" if completion is not None else "error", row.id, custom_id))
        return trial_id


__all__ = ["BatchRow", "BatchStore"]
