"""One tool call against a trial's workspace -> one stored tool result.

run_checks is handed in as a callable so this module needs neither the grader nor the
store; the loop builds it over harness.scoring.grade (see feedback.py for the text).
Refusals (ToolError) and invalid calls become error results and the trial goes on;
any other exception is a harness bug and propagates.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from harness.agent.conversation import AssistantStep, Conversation, ToolResultStep
from harness.agent.fsops import ToolError
from harness.agent.tools import CheckLevel, ListFilesArgs, ReadFileArgs, RunChecksArgs, ToolCall, WriteFileArgs
from harness.agent.workspace import Workspace

ChecksFn = Callable[[CheckLevel | None], tuple[str, dict[str, Any]]]
"""level asked (None: the eval's) -> (text for the model, detail kept by the harness)."""

ERROR_PREFIX = "tool error: "
SUBMITTED = "submitted: the workspace is graded as your answer"


def error_result(call: ToolCall, message: str) -> ToolResultStep:
    return ToolResultStep(call_id=call.id, name=call.name, content=ERROR_PREFIX + message, is_error=True)


def execute_call(call: ToolCall, ws: Workspace, run_checks: ChecksFn) -> tuple[ToolResultStep, bool]:
    """(the result to store and send, whether the trial ends: submit was called)."""
    start = time.monotonic()
    if call.error is not None:
        return error_result(call, call.error), False
    args = call.args()
    detail: dict[str, Any] | None = None
    ends = False
    try:
        if isinstance(args, ReadFileArgs):
            content = ws.read_file(args.path)
        elif isinstance(args, WriteFileArgs):
            content = ws.write_file(args.path, args.content)
            detail = {"path": args.path, "bytes": len(args.content.encode("utf-8", "surrogatepass"))}
        elif isinstance(args, ListFilesArgs):
            content = ws.list_files(args.path)
        elif isinstance(args, RunChecksArgs):
            content, detail = run_checks(args.level)
        else:  # SubmitArgs
            content, ends = SUBMITTED, True
    except ToolError as err:
        return error_result(call, str(err)), False
    return ToolResultStep(call_id=call.id, name=call.name, content=content, detail=detail,
                          wall_s=round(time.monotonic() - start, 4)), ends


def replay_writes(conversation: Conversation, ws: Workspace) -> int:
    """Rebuild a fresh workspace from the stored trajectory: every write_file whose stored
    result was not an error, in order. A resume after kill -9 starts from this rather than
    from the folder, which a kill may have left mid-write. Returns the writes replayed."""
    ok: set[str] = {s.call_id for s in conversation.steps if isinstance(s, ToolResultStep) and not s.is_error}
    replayed = 0
    for step in conversation.steps:
        if not isinstance(step, AssistantStep):
            continue
        for call in step.tool_calls:
            if call.name == "write_file" and call.error is None and call.id in ok:
                args = call.args()
                assert isinstance(args, WriteFileArgs)
                ws.write_file(args.path, args.content)  # passed once under the same limits
                replayed += 1
    return replayed


__all__ = ["ERROR_PREFIX", "SUBMITTED", "ChecksFn", "error_result", "execute_call", "replay_writes"]
