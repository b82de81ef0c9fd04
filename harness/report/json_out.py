"""Machine-readable report (`--json`): the run, its summary and any gate results, as plain JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from harness.report.model import ReportRun
from harness.report.summary import Summary, summarize

#: Bumped when the layout of the JSON document changes incompatibly.
JSON_SCHEMA_VERSION = 1


class ReportDocument(BaseModel):
    """What `to_json` writes; `from_json` reads it back."""

    schema_version: int = JSON_SCHEMA_VERSION
    run: ReportRun
    summary: Summary
    gates_failed: list[str] | None = None
    """None when no gate was asked for; [] when every gate held."""


def to_json(run: ReportRun, *, summary: Summary | None = None, gates_failed: list[str] | None = None,
            include_trials: bool = True) -> dict[str, Any]:
    """A JSON-ready dict (json.dumps works on it as is)."""
    summary = summary or summarize(run)
    if not include_trials:
        run = run.model_copy(update={"trials": []})
    doc = ReportDocument(run=run, summary=summary, gates_failed=gates_failed)
    return doc.model_dump(mode="json")


def from_json(data: dict[str, Any]) -> ReportDocument:
    """Read back a document written by to_json (ValueError on another schema version)."""
    version = data.get("schema_version")
    if version != JSON_SCHEMA_VERSION:
        raise ValueError(f"report JSON: schema_version {version!r}, expected {JSON_SCHEMA_VERSION}")
    return ReportDocument.model_validate(data)
