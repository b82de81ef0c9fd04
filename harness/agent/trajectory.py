"""What a stored trajectory says, for the report: pure functions over its steps.

- turns used, tool calls by name, tool errors, how it ended;
- whether the with-skill arm read skill/SKILL.md and which other skill files it read;
- pass@turn: the turn from which the workspace is known to pass. The workspace after turn t
  is rebuilt from the stored writes (its project_digest); it is known to pass when a
  run_checks at the eval's own level passed on that same content (every required check,
  the hidden text assertions included), or, from the trial's last turn on, when its final
  grade passed. Content never checked counts as not passing: the figure is a lower bound,
  read from stored results, never from a new grading.
- the trajectory turn by turn, cut to a readable size, for `runs show` and the HTML report.
"""

from __future__ import annotations

import json
from collections import Counter

from pydantic import BaseModel, Field

from harness.agent.conversation import AnyStep, AssistantStep, EndStep, ToolResultStep, UserStep
from harness.agent.workspace import SKILL_ROOT, project_digest
from harness.extract.answer import check_relpath

SHOW_CHARS = 1200
"""A tool result or message longer than this is cut in the trajectory view."""


class CallView(BaseModel):
    name: str
    arguments: str
    """The call's arguments as JSON, long strings cut."""
    result: str = ""
    is_error: bool = False
    verdict: str | None = None
    """run_checks: the verdict the model was shown."""


class TurnView(BaseModel):
    turn: int
    text: str = ""
    calls: list[CallView] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class TrajectoryStats(BaseModel):
    """One agent trial as the report reads it."""

    outcome: str | None = None
    """submitted | final_message | ran_out_turns | ran_out_tokens | ran_out_context; None: not ended."""
    turns: int = 0
    tool_calls: dict[str, int] = Field(default_factory=dict)
    """Calls by the name the model used (unknown names included)."""
    tool_errors: int = 0
    skill_md_read: bool = False
    references_read: list[str] = Field(default_factory=list)
    """Other files under skill/ read successfully (paths inside the skill folder)."""
    pass_turn: int | None = None
    """The first turn after which the workspace is known to pass; None: never known to."""
    task: str = ""
    """The first message."""
    trajectory: list[TurnView] = Field(default_factory=list)

    def passed_by(self, turn: int) -> bool:
        return self.pass_turn is not None and self.pass_turn <= turn


def _cut(text: str, limit: int = SHOW_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def _short_args(arguments: dict) -> str:
    shown = {k: (v if not isinstance(v, str) or len(v) <= 200 else v[:200] + f"... ({len(v)} chars)")
             for k, v in arguments.items()}
    return json.dumps(shown, ensure_ascii=False)


def _skill_path(path: object) -> str | None:
    """The path inside skill/ that a read_file argument names, or None."""
    if not isinstance(path, str):
        return None
    norm, _ = check_relpath(path.strip())
    if norm is None or not norm.startswith(SKILL_ROOT + "/"):
        return None
    return norm[len(SKILL_ROOT) + 1:]


def trajectory_stats(steps: list[AnyStep], *, final_verdict: str | None = None) -> TrajectoryStats:
    """Read a trajectory. `final_verdict` is the trial's latest grade (None: not graded)."""
    results = {s.call_id: s for s in steps if isinstance(s, ToolResultStep)}
    files: dict[str, bytes] = {}
    digests: list[str] = []  # the workspace after each turn
    known: dict[str, str] = {}  # digest -> verdict of a full-level run_checks
    counts: Counter[str] = Counter()
    stats = TrajectoryStats()
    read: list[str] = []
    for step in steps:
        if isinstance(step, UserStep) and not stats.task:
            stats.task = step.text
        elif isinstance(step, EndStep):
            stats.outcome = step.outcome
        elif isinstance(step, AssistantStep):
            view = TurnView(turn=len(digests) + 1, text=_cut(step.text), input_tokens=step.usage.input_tokens,
                            output_tokens=step.usage.output_tokens)
            for call in step.tool_calls:
                counts[call.name] += 1
                result = results.get(call.id)
                detail = (result.detail or {}) if result else {}
                ok = result is not None and not result.is_error
                if ok and call.name == "write_file":
                    # Keyed as the workspace keys it (the normalised path), so the digest matches run_checks'.
                    norm, _ = check_relpath(str(call.arguments["path"]).strip())
                    if norm is not None:
                        files[norm] = call.arguments["content"].encode("utf-8", "surrogatepass")
                if ok and call.name == "read_file" and (inner := _skill_path(call.arguments.get("path"))):
                    read.append(inner)
                if ok and call.name == "run_checks" and detail.get("full_level") and detail.get("digest"):
                    known[detail["digest"]] = detail.get("verdict", "")
                view.calls.append(CallView(
                    name=call.name,
                    arguments=_cut(call.raw_arguments, 400) if call.error and call.raw_arguments is not None
                    else _short_args(call.arguments),
                    result=_cut(result.content) if result else "(no result stored)",
                    is_error=bool(result and result.is_error), verdict=detail.get("shown_verdict")))
            stats.trajectory.append(view)
            digests.append(project_digest(files))
    stats.turns = len(digests)
    stats.tool_calls = dict(sorted(counts.items()))
    stats.tool_errors = sum(1 for r in results.values() if r.is_error)
    stats.skill_md_read = "SKILL.md" in read
    stats.references_read = sorted({p for p in read if p != "SKILL.md"})
    for turn, digest in enumerate(digests, start=1):
        ended = stats.outcome is not None and turn >= stats.turns
        if known.get(digest) == "pass" or (ended and final_verdict == "pass"):
            stats.pass_turn = turn
            break
    if stats.pass_turn is None and stats.outcome is not None and stats.turns == 0 and final_verdict == "pass":
        stats.pass_turn = 0  # ended before any turn (e.g. out of context at once) and still passed
    return stats


__all__ = ["CallView", "TrajectoryStats", "TurnView", "trajectory_stats"]
