"""Runs, trials, responses and grades in SQLite (WAL).

Every model response is written before it is graded, so an interrupted run
resumes without calling the model again for answered trials, and `rescore`
re-grades stored responses with today's checks (e.g. later on an H100 node).
Grades are appended, never overwritten: the latest grade of a trial is current.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel

from harness.models.base import Completion
from harness.scoring.grade import Grade
from harness.common.errors import UserError
from harness.common.paths import db_path

SCHEMA_VERSION = 1

TrialStatus = Literal["pending", "answered", "error"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- eval | generate
    created TEXT NOT NULL,
    status TEXT NOT NULL,            -- running | finished | interrupted
    config TEXT NOT NULL,            -- JSON: options as given (models, runs, level, ...)
    env TEXT NOT NULL,               -- JSON: provenance
    skill TEXT,                      -- JSON: name, path, sha256, block (the text sent)
    cases TEXT NOT NULL              -- JSON: the case list as loaded
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    case_id TEXT NOT NULL,
    model TEXT NOT NULL,
    arm TEXT NOT NULL,               -- baseline | with_skill
    run_index INTEGER NOT NULL,
    status TEXT NOT NULL,            -- pending | answered | error
    prompt TEXT,                     -- JSON Prompt
    prompt_sha256 TEXT,
    request TEXT,                    -- JSON sampling settings
    completion TEXT,                 -- JSON Completion
    error TEXT,
    calls INTEGER NOT NULL DEFAULT 0, -- model calls made for this trial (attempts included)
    updated TEXT NOT NULL,
    UNIQUE (run_id, case_id, model, arm, run_index)
);
CREATE TABLE IF NOT EXISTS grades (
    id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    graded TEXT NOT NULL,
    level TEXT NOT NULL,
    device TEXT NOT NULL,
    verdict TEXT NOT NULL,
    grade TEXT NOT NULL,             -- JSON harness.scoring.grade.Grade
    version TEXT NOT NULL            -- kernelgrade version that graded
);
CREATE TABLE IF NOT EXISTS agent_steps (
    id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    seq INTEGER NOT NULL,            -- 0, 1, ... in trajectory order
    role TEXT NOT NULL,              -- user | assistant | tool | end
    call_id TEXT,                    -- tool: the call this result answers
    tool TEXT,                       -- tool: the tool's name as called
    is_error INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER,            -- assistant: this call's usage
    output_tokens INTEGER,
    cached_tokens INTEGER,
    body TEXT NOT NULL,              -- JSON harness.agent.conversation step
    created TEXT NOT NULL,
    UNIQUE (trial_id, seq),
    UNIQUE (trial_id, call_id)       -- a tool call's result is stored once
);
CREATE INDEX IF NOT EXISTS grades_trial ON grades (trial_id, id);
CREATE INDEX IF NOT EXISTS trials_run ON trials (run_id);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """Time for humans, 48 random bits so two runs started in the same second never collide."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(6)


class TrialRecord(BaseModel):
    """One stored trial with its answer and its latest grade, typed from the store to the report."""

    id: int
    run_id: str
    case_id: str
    model: str
    arm: str
    run_index: int
    status: TrialStatus
    prompt: dict | None = None
    prompt_sha256: str | None = None
    request: dict | None = None
    completion: Completion | None = None
    """The model's answer as stored before grading; None until answered."""
    error: str | None = None
    calls: int = 0
    grade: Grade | None = None
    """The latest grade, None if never graded."""
    graded: str | None = None



class AgentStepRow(BaseModel):
    """One stored step of an agent trajectory (agent mode, issue 17)."""

    seq: int
    role: str
    call_id: str | None = None
    tool: str | None = None
    is_error: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    body: str
    """The step as JSON (harness.agent.conversation.step_from_json reads it)."""
    created: str


class RunRow(BaseModel):
    id: str
    kind: str
    created: str
    status: str
    config: dict
    env: dict
    skill: dict | None
    cases: list[dict]

    @property
    def mode(self) -> str:
        """one-shot or agent; runs stored before agent mode existed are one-shot."""
        return self.config.get("mode") or "one-shot"


#: A trial's prompt as stored: the Prompt's fields, its sha256, the request's settings.
PromptRecord = tuple[dict, str, dict]
_PROMPT_SET = ", prompt=?, prompt_sha256=?, request=?"


def _prompt_args(prompt: PromptRecord | None) -> tuple:
    if prompt is None:
        return ()
    fields, sha, request = prompt
    return json.dumps(fields), sha, json.dumps(request)


def _step_row(r: sqlite3.Row) -> AgentStepRow:
    return AgentStepRow(seq=r["seq"], role=r["role"], call_id=r["call_id"], tool=r["tool"], is_error=bool(r["is_error"]),
                        input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
                        cached_tokens=r["cached_tokens"], body=r["body"], created=r["created"])


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0,
                                   isolation_level=None)  # autocommit; explicit BEGIN where needed
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise UserError(f"{self.path}: written by a newer kernelgrade (schema {row[0]})")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        """One statement under the store's lock (autocommit). Modules that keep their own
        tables beside the run (harness/workflows/generate.py) use this rather than the connection."""
        with self._lock:
            return self._db.execute(sql, args)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside (this thread's, under the lock) commit together or not at all."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def copy_run(self, run_id: str, into: Store) -> None:
        """Copy a run, its trials and every grade (history included) into another store, as
        they are; trial ids are renumbered there. Wrap in `into.transaction()` for all-or-nothing."""
        run = self.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if run is None:
            raise UserError(f"run {run_id!r}: not found in {self.path}")
        trials = self.execute("SELECT * FROM trials WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
        grades = self.execute("SELECT g.* FROM grades g JOIN trials t ON t.id = g.trial_id WHERE t.run_id=?"
                              " ORDER BY g.id", (run_id,)).fetchall()
        into.execute(f"INSERT INTO runs ({','.join(run.keys())}) VALUES ({','.join('?' * len(run))})", tuple(run))
        new_ids: dict[int, int] = {}
        for t in trials:
            cols = [c for c in t.keys() if c != "id"]
            cur = into.execute(f"INSERT INTO trials ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                               tuple(t[c] for c in cols))
            new_ids[t["id"]] = int(cur.lastrowid)
        steps = self.execute("SELECT s.* FROM agent_steps s JOIN trials t ON t.id = s.trial_id WHERE t.run_id=?"
                             " ORDER BY s.id", (run_id,)).fetchall()
        for table, rows in (("grades", grades), ("agent_steps", steps)):
            for g in rows:
                row = dict(g) | {"trial_id": new_ids[g["trial_id"]]}
                del row["id"]
                into.execute(f"INSERT INTO {table} ({','.join(row)}) VALUES ({','.join('?' * len(row))})",
                             tuple(row.values()))

    # runs -----------------------------------------------------------------
    def create_run(self, *, kind: str, config: dict, env: dict, skill: dict | None,
                   cases: list[dict], run_id: str | None = None, created: str | None = None) -> str:
        """`created`: when the run was made, where that was not now (a run imported from another tool)."""
        run_id = run_id or new_run_id()
        self.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                   (run_id, kind, created or now(), "running", json.dumps(config), json.dumps(env),
                    json.dumps(skill) if skill is not None else None, json.dumps(cases)))
        return run_id

    def set_run_status(self, run_id: str, status: str) -> None:
        self.execute("UPDATE runs SET status=? WHERE id=?", (status, run_id))

    def get_run(self, run_id: str) -> RunRow:
        row = self.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            matches = self.execute("SELECT id FROM runs WHERE id LIKE ?", (f"{run_id}%",)).fetchall()
            if len(matches) == 1:
                return self.get_run(matches[0][0])
            raise UserError(f"run {run_id!r}: not found in {self.path}"
                            + (f" ({len(matches)} runs start with it)" if matches else ""))
        return RunRow(id=row["id"], kind=row["kind"], created=row["created"], status=row["status"],
                      config=json.loads(row["config"]), env=json.loads(row["env"]),
                      skill=json.loads(row["skill"]) if row["skill"] else None,
                      cases=json.loads(row["cases"]))

    def list_runs(self) -> list[dict[str, Any]]:
        """Runs with their trial counts; a generate run counts the trials of the eval runs it
        made (config.generate_run), since it has none of its own."""
        rows = self.execute("""
            SELECT r.id, r.kind, r.created, r.status, r.config,
                   COUNT(t.id) AS trials,
                   SUM(t.status='answered') AS answered,
                   SUM(t.status='error') AS errors
            FROM runs r
            LEFT JOIN runs c ON c.id = r.id
                OR (r.kind = 'generate' AND json_extract(c.config, '$.generate_run') = r.id)
            LEFT JOIN trials t ON t.run_id = c.id
            GROUP BY r.id ORDER BY r.created DESC, r.id DESC""").fetchall()
        return [dict(r) | {"config": json.loads(r["config"])} for r in rows]

    # trials ---------------------------------------------------------------
    def add_trials(self, run_id: str, keys: list[tuple[str, str, str, int]]) -> None:
        """Insert (case_id, model, arm, run_index) rows as pending; existing rows are kept."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO trials (run_id, case_id, model, arm, run_index, status, updated)"
                " VALUES (?,?,?,?,?, 'pending', ?)",
                [(run_id, c, m, a, i, now()) for c, m, a, i in keys])

    def record_prompt(self, trial_id: int, prompt: dict, prompt_sha256: str, request: dict) -> None:
        self.execute("UPDATE trials SET" + _PROMPT_SET[1:] + ", updated=? WHERE id=?",
                     (*_prompt_args((prompt, prompt_sha256, request)), now(), trial_id))

    def record_completion(self, trial_id: int, completion: Completion, *, count_calls: bool = True,
                          prompt: PromptRecord | None = None) -> None:
        """Stored before grading: from here on the trial never calls the model again.
        `count_calls` False: the calls were counted as they were made (agent steps). `prompt`:
        the prompt, its sha256 and the request settings, in the same write (one statement a call)."""
        self.execute("UPDATE trials SET status='answered', completion=?, error=NULL,"
                     " calls=calls+?, updated=?" + _PROMPT_SET * (prompt is not None) + " WHERE id=?",
                     (completion.model_dump_json(), completion.attempts if count_calls else 0, now(),
                      *_prompt_args(prompt), trial_id))

    def add_agent_step(self, trial_id: int, seq: int, *, role: str, body: str, call_id: str | None = None,
                       tool: str | None = None, is_error: bool = False, usage: tuple[int, int, int] | None = None,
                       calls: int = 0) -> None:
        """One step of a trajectory, committed before the next model call (one autocommit
        INSERT, with the trial's call count when it is a model turn). A seq or call id stored
        already raises sqlite3.IntegrityError: a step is never stored twice."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO agent_steps (trial_id, seq, role, call_id, tool, is_error, input_tokens, output_tokens,"
                " cached_tokens, body, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (trial_id, seq, role, call_id, tool, int(is_error), *(usage or (None, None, None)), body, now()))
            if calls:
                self._db.execute("UPDATE trials SET calls=calls+?, updated=? WHERE id=?", (calls, now(), trial_id))

    def agent_steps(self, trial_id: int) -> list[AgentStepRow]:
        rows = self.execute("SELECT * FROM agent_steps WHERE trial_id=? ORDER BY seq", (trial_id,)).fetchall()
        return [_step_row(r) for r in rows]

    def agent_steps_of_run(self, run_id: str) -> dict[int, list[AgentStepRow]]:
        """trial id -> its steps in order, for every trial of the run that has any."""
        out: dict[int, list[AgentStepRow]] = {}
        for r in self.execute("SELECT s.* FROM agent_steps s JOIN trials t ON t.id = s.trial_id WHERE t.run_id=?"
                              " ORDER BY s.trial_id, s.seq", (run_id,)).fetchall():
            out.setdefault(r["trial_id"], []).append(_step_row(r))
        return out

    def record_error(self, trial_id: int, error: str, calls: int = 1, *, prompt: PromptRecord | None = None) -> None:
        """The last error of a failed call; `calls`: attempts it made (retries included)."""
        self.execute("UPDATE trials SET status='error', error=?, calls=calls+?, updated=?"
                     + _PROMPT_SET * (prompt is not None) + " WHERE id=?",
                     (error, calls, now(), *_prompt_args(prompt), trial_id))

    def record_grade(self, trial_id: int, grade: Grade, *, version: str) -> None:
        """A new grade for the trial; earlier grades stay (rescore appends)."""
        self.execute("INSERT INTO grades (trial_id, graded, level, device, verdict, grade, version)"
                   " VALUES (?,?,?,?,?,?,?)",
                   (trial_id, now(), grade.level, grade.device, grade.score.verdict, grade.model_dump_json(), version))

    def trials(self, run_id: str, *, status: TrialStatus | None = None) -> list[TrialRecord]:
        sql = """
            SELECT t.*, g.grade AS grade_json, g.graded AS graded_at FROM trials t
            LEFT JOIN grades g ON g.id = (SELECT MAX(id) FROM grades WHERE trial_id = t.id)
            WHERE t.run_id = ?"""
        args: tuple = (run_id,)
        if status is not None:
            sql += " AND t.status = ?"
            args += (status,)
        sql += " ORDER BY t.id"
        out = []
        for r in self.execute(sql, args).fetchall():
            out.append(TrialRecord(
                id=r["id"], run_id=r["run_id"], case_id=r["case_id"], model=r["model"], arm=r["arm"],
                run_index=r["run_index"], status=r["status"],
                prompt=json.loads(r["prompt"]) if r["prompt"] else None, prompt_sha256=r["prompt_sha256"],
                request=json.loads(r["request"]) if r["request"] else None,
                completion=Completion.model_validate_json(r["completion"]) if r["completion"] else None,
                error=r["error"], calls=r["calls"],
                grade=Grade.model_validate_json(r["grade_json"]) if r["grade_json"] else None,
                graded=r["graded_at"]))
        return out

    def iter_run_ids(self) -> Iterator[str]:
        for (run_id,) in self.execute("SELECT id FROM runs ORDER BY created").fetchall():
            yield run_id
