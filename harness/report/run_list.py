"""`kernelgrade runs`: the stored runs as rows, filtered by skill, model and age."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from collections.abc import Sequence
from typing import Any

from harness.common.errors import UserError
from harness.store.db import Store

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """--since: a date or time (2026-11-30, 2026-11-30T12:00, ISO with a zone) or an age (90m, 24h, 7d, 2w).
    Times without a zone are UTC, as the store writes them."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(text.strip())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--since {text!r}: a date (2026-11-30), a time (2026-11-30T12:00) or an age "
                        "(90m, 24h, 7d, 2w)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def run_rows(store: Store) -> list[dict[str, Any]]:
    """Every run, newest first: id, kind, mode, created, status, skill, models, trial counts."""
    skills = {r["id"]: json.loads(r["skill"]) if r["skill"] else {}
              for r in store.execute("SELECT id, skill FROM runs").fetchall()}
    rows = []
    for r in store.list_runs():
        config = r["config"]
        models = config.get("models") or config.get("students") or []  # generate: its students
        mode = config.get("mode") or ("agent" if config.get("agent") else "one-shot")
        skill = skills.get(r["id"]) or {}
        rows.append({"id": r["id"], "kind": r["kind"], "mode": mode, "created": r["created"], "status": r["status"],
                     "skill": skill.get("name") or config.get("name") or "", "models": ", ".join(models),
                     "trials": r["trials"], "answered": r["answered"] or 0, "errors": r["errors"] or 0,
                     "source": config.get("imported_from") or "kernelgrade"})
    return rows


def filter_rows(rows: list[dict[str, Any]], *, skill: Sequence[str] = (), model: Sequence[str] = (),
                since: str | None = None) -> list[dict[str, Any]]:
    """Rows whose skill is one of `skill`, one of whose models is in `model` (empty: any), created
    at or after `since`."""
    cutoff = parse_since(since) if since else None
    out = []
    for row in rows:
        if skill and row["skill"] not in skill:
            continue
        if model and not set(model) & {m.strip() for m in row["models"].split(",")}:
            continue
        if cutoff is not None:
            created = datetime.fromisoformat(row["created"])
            if (created if created.tzinfo else created.replace(tzinfo=timezone.utc)) < cutoff:
                continue
        out.append(row)
    return out


__all__ = ["filter_rows", "parse_since", "run_rows"]
