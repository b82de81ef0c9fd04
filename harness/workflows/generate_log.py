"""A generate run's own storage: teacher calls and step results, two tables beside the runs.

They live on the Store's connection (its lock, its WAL), so a generate run is exported,
imported and shown with the run it belongs to.
"""

from __future__ import annotations

import json
from typing import Any

from harness.models.base import ChatRequest, Completion
from harness.store.db import Store, now
from harness.workflows import teacher as T

_TABLES = [
    """CREATE TABLE IF NOT EXISTS teacher_calls (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,              -- cases | draft-N
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,            -- pending | answered | ok | invalid | error
        request TEXT NOT NULL,           -- JSON ChatRequest, stored before the call
        completion TEXT,                 -- JSON Completion, stored before parsing
        problem TEXT,                    -- why the answer was refused, or the call error
        created TEXT NOT NULL,
        updated TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS teacher_calls_run ON teacher_calls (run_id, step, id)",
    """CREATE TABLE IF NOT EXISTS generate_steps (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,
        data TEXT NOT NULL,              -- JSON: what the step produced
        updated TEXT NOT NULL,
        PRIMARY KEY (run_id, step))""",
]



class GenerateLog:
    """teacher_calls and generate_steps on the Store's connection (its lock, its WAL)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        for sql in _TABLES:
            store.execute(sql)

    # CallLog
    def calls(self, step: str) -> list[T.StoredCall]:
        rows = self.store.execute("SELECT id, attempt, status, completion, problem FROM teacher_calls"
                                " WHERE run_id=? AND step=? ORDER BY id", (self.run_id, step)).fetchall()
        return [T.StoredCall(id=r["id"], attempt=r["attempt"], status=r["status"], problem=r["problem"],
                             text=json.loads(r["completion"])["text"] if r["completion"] else None) for r in rows]

    def start(self, step: str, attempt: int, request: ChatRequest) -> int:
        cur = self.store.execute("INSERT INTO teacher_calls (run_id, step, attempt, status, request, created, updated)"
                               " VALUES (?,?,?,?,?,?,?)",
                               (self.run_id, step, attempt, "pending", request.model_dump_json(), now(), now()))
        return int(cur.lastrowid)

    def answered(self, call_id: int, completion: Completion) -> None:
        self.store.execute("UPDATE teacher_calls SET status='answered', completion=?, updated=? WHERE id=?",
                         (completion.model_dump_json(), now(), call_id))

    def failed(self, call_id: int, error: str) -> None:
        self.store.execute("UPDATE teacher_calls SET status='error', problem=?, updated=? WHERE id=?",
                         (error, now(), call_id))

    def judged(self, call_id: int, ok: bool, problem: str | None) -> None:
        self.store.execute("UPDATE teacher_calls SET status=?, problem=?, updated=? WHERE id=?",
                         ("ok" if ok else "invalid", problem, now(), call_id))

    # steps
    def get(self, step: str) -> dict | None:
        row = self.store.execute("SELECT data FROM generate_steps WHERE run_id=? AND step=?",
                               (self.run_id, step)).fetchone()
        return json.loads(row["data"]) if row else None

    def put(self, step: str, data: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO generate_steps VALUES (?,?,?,?)",
                         (self.run_id, step, json.dumps(data, default=str), now()))

    def call_counts(self) -> dict[str, int]:
        rows = self.store.execute("SELECT status, COUNT(*) AS n FROM teacher_calls WHERE run_id=? GROUP BY status",
                                (self.run_id,)).fetchall()
        counts = {r["status"]: r["n"] for r in rows}
        return counts | {"total": sum(counts.values())}


def teacher_calls(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every stored teacher call of a generate run, oldest first (request, answer, verdict)."""
    GenerateLog(store, run_id)
    rows = store.execute("SELECT * FROM teacher_calls WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
    return [dict(r) | {"request": json.loads(r["request"]),
                       "completion": json.loads(r["completion"]) if r["completion"] else None} for r in rows]


def linked_runs(store: Store, run_id: str) -> dict[str, str]:
    """phase (train-0, train-1, ..., holdout) -> id of the eval run that generate run made for it."""
    GenerateLog(store, run_id)
    rows = store.execute("SELECT step, data FROM generate_steps WHERE run_id=? AND step LIKE 'eval-%'",
                         (run_id,)).fetchall()
    found = {r["step"].removeprefix("eval-"): json.loads(r["data"])["run_id"] for r in rows}

    def order(phase: str) -> tuple[bool, int]:  # train-0, train-1, ..., train-10, then holdout
        return phase == "holdout", int(phase.removeprefix("train-")) if phase.startswith("train-") else 0

    return {phase: found[phase] for phase in sorted(found, key=order)}


def generate_step(store: Store, run_id: str, step: str) -> dict | None:
    """What one step of a generate run stored (source, cases, split, draft-N, write), if it ran."""
    return GenerateLog(store, run_id).get(step)


def copy_generate_log(src: Store, dst: Store, run_id: str) -> None:
    """A generate run's teacher calls and step results, from one store into another (runs
    export / import); the calls keep their order. The run row itself is copied by Store.copy_run."""
    for store in (src, dst):
        GenerateLog(store, run_id)  # creates the tables where they are missing
    for table, order in (("teacher_calls", "id"), ("generate_steps", "step")):
        for row in src.execute(f"SELECT * FROM {table} WHERE run_id=? ORDER BY {order}", (run_id,)).fetchall():
            data = {k: row[k] for k in row.keys() if k != "id"}
            dst.execute(f"INSERT INTO {table} ({','.join(data)}) VALUES ({','.join('?' * len(data))})",
                        tuple(data.values()))


__all__ = ["GenerateLog", "copy_generate_log", "generate_step", "linked_runs", "teacher_calls"]
