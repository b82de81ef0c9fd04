"""CSV outputs: one row per trial (`eval`, `rescore`, `runs show` with --csv) and one row per
run (`runs --csv`). Plain columns a spreadsheet reads; empty cells for "not measured"."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable

from harness.report.model import ReportRun
from harness.report.summary import device_of, is_correct, speedup_of

TRIAL_COLUMNS = ("run_id", "model", "arm", "case_id", "run_index", "verdict", "correct", "speedup", "device",
                 "assertions_passed", "assertions_total", "input_tokens", "output_tokens", "cached_tokens",
                 "cost_usd", "latency_s", "reason")
RUN_COLUMNS = ("id", "kind", "mode", "created", "status", "skill", "models", "trials", "answered", "errors")


def _write(columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()


def trials_csv(run: ReportRun) -> str:
    """One row per trial of the run."""
    def row(t) -> dict[str, Any]:
        ran = t.check("run") is not None
        return {"run_id": run.run_id, "model": t.model, "arm": t.arm, "case_id": t.case_id,
                "run_index": t.run_index, "verdict": t.verdict, "correct": is_correct(t) if ran else None,
                "speedup": speedup_of(t), "device": device_of(t, run) if ran else None,
                "assertions_passed": t.assertions_passed, "assertions_total": t.assertions_total,
                "input_tokens": t.input_tokens, "output_tokens": t.output_tokens, "cached_tokens": t.cached_tokens,
                "cost_usd": t.cost_usd, "latency_s": t.latency_s, "reason": t.error or t.verdict_reason}
    return _write(TRIAL_COLUMNS, (row(t) for t in run.trials))


def runs_csv(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> str:
    """One row per stored run (the rows `runs` lists), with `extra` columns after (runs --metric)."""
    return _write(RUN_COLUMNS + extra, rows)


__all__ = ["RUN_COLUMNS", "TRIAL_COLUMNS", "runs_csv", "trials_csv"]
