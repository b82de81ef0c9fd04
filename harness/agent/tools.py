"""The fixed tool contract of agent mode, as one neutral spec.

The names, arguments and meanings never vary by model or skill, so reports compare
across both (issue 17). Each tool's arguments are a pydantic model (what the harness
validates) next to a hand-written JSON schema (what the provider sees): hand-written
because pydantic's schemas carry titles and anyOf-null forms that some servers'
grammar builders (llama.cpp) do not handle. A test keeps the two in step.

A provider's call is parsed into a ToolCall that always exists, so the assistant turn
can be stored and re-sent exactly as the model made it; a call that cannot be run
(malformed JSON, unknown tool, bad arguments) carries `error`, which goes back to the
model as a tool error while the trial goes on.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

ToolName = Literal["read_file", "write_file", "list_files", "run_checks", "submit"]
CheckLevel = Literal["text", "compile", "run"]


class _Args(BaseModel):
    # Unknown arguments are refused rather than ignored: a model that sends `filename`
    # for `path` should hear about it, not have its write silently go nowhere.
    model_config = ConfigDict(extra="forbid", strict=True)


class ReadFileArgs(_Args):
    path: str


class WriteFileArgs(_Args):
    path: str
    content: str


class ListFilesArgs(_Args):
    path: str = "."


class RunChecksArgs(_Args):
    level: CheckLevel | None = None


class SubmitArgs(_Args):
    pass


class ToolSpec(BaseModel):
    name: ToolName
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object, as sent to the provider."""
    args_model: type[_Args]


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_STR = {"type": "string"}

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(name="read_file", args_model=ReadFileArgs,
             description="Read a text file of the workspace. `path` is relative to the workspace root.",
             parameters=_schema({"path": _STR | {"description": "relative path, e.g. build.toml"}}, ["path"])),
    ToolSpec(name="write_file", args_model=WriteFileArgs,
             description=("Create or replace a file of the workspace with `content` (the whole file). "
                          "Paths are relative, use /, and never contain '..'."),
             parameters=_schema({"path": _STR | {"description": "relative path"},
                                 "content": _STR | {"description": "the complete file content"}},
                                ["path", "content"])),
    ToolSpec(name="list_files", args_model=ListFilesArgs,
             description="List the files under a folder of the workspace (default: the whole workspace), with sizes.",
             parameters=_schema({"path": _STR | {"description": "relative folder, default ."}}, [])),
    ToolSpec(name="run_checks", args_model=RunChecksArgs,
             description=("Run the task's checks on the workspace as it is now and return each check's verdict "
                          "and the first errors. `level` (text, compile, run) lowers the level; it never goes "
                          "above the evaluation's level."),
             parameters=_schema({"level": {"type": "string", "enum": ["text", "compile", "run"]}}, [])),
    ToolSpec(name="submit", args_model=SubmitArgs,
             description="Finish: the workspace as it is now is graded as your answer.",
             parameters=_schema({}, [])),
)
SPECS: dict[str, ToolSpec] = {s.name: s for s in TOOL_SPECS}


def anthropic_tools() -> list[dict[str, Any]]:
    """Anthropic Messages API `tools`."""
    return [{"name": s.name, "description": s.description, "input_schema": s.parameters} for s in TOOL_SPECS]


def openai_tools() -> list[dict[str, Any]]:
    """OpenAI Chat Completions `tools` (also llama.cpp's and vLLM's)."""
    return [{"type": "function", "function": {"name": s.name, "description": s.description,
                                              "parameters": s.parameters}} for s in TOOL_SPECS]


class ToolCall(BaseModel):
    """One call as the provider made it, plus whether it can be run."""

    id: str
    name: str
    """As sent; may be a name that is not a tool (then `error` says so)."""
    arguments: dict[str, Any] = {}
    """The parsed arguments; {} when they did not parse."""
    raw_arguments: str | None = None
    """The exact argument string (OpenAI-style providers), re-sent verbatim in later turns."""
    error: str | None = None
    """Why the call cannot be run; None for a valid call."""

    def args(self) -> _Args:
        """The validated arguments of a valid call."""
        if self.error is not None:
            raise ValueError(f"tool call {self.id} is not runnable: {self.error}")
        return SPECS[self.name].args_model.model_validate(self.arguments)


def _short(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        where = ".".join(str(p) for p in e["loc"]) or "arguments"
        parts.append(f"{where}: {e['msg'].lower()}")
    return "; ".join(parts)


def check_call(call_id: str, name: str, arguments: Any, raw: str | None = None) -> ToolCall:
    """Validate name and arguments; never raises for what the model sent."""
    error: str | None = None
    args: dict[str, Any] = arguments if isinstance(arguments, dict) else {}
    if name not in SPECS:
        error = f"unknown tool {name!r}; the tools are {', '.join(SPECS)}"
    elif not isinstance(arguments, dict):
        error = f"arguments must be a JSON object, got {type(arguments).__name__}"
    else:
        try:
            SPECS[name].args_model.model_validate(arguments)
        except ValidationError as err:
            error = f"bad arguments for {name}: {_short(err)}"
    return ToolCall(id=call_id, name=name, arguments=args, raw_arguments=raw, error=error)


def parse_openai_call(call: dict[str, Any]) -> ToolCall:
    """An OpenAI `tool_calls` item ({"id", "type", "function": {"name", "arguments"}})."""
    fn = call.get("function") or {}
    call_id, name, raw = str(call.get("id") or ""), str(fn.get("name") or ""), fn.get("arguments")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return check_call(call_id, name, {}, raw)  # some servers send "" for a call without arguments
    if not isinstance(raw, str):
        return check_call(call_id, name, raw, json.dumps(raw))
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as err:
        bad = check_call(call_id, name, {}, raw)
        if name in SPECS:  # an unknown name keeps its own, more useful, error
            bad.error = f"malformed JSON arguments ({err.msg} at char {err.pos}); send one JSON object"
        return bad
    return check_call(call_id, name, parsed, raw)


def parse_anthropic_call(block: dict[str, Any]) -> ToolCall:
    """An Anthropic `tool_use` content block ({"id", "name", "input"})."""
    return check_call(str(block.get("id") or ""), str(block.get("name") or ""), block.get("input", {}))


__all__ = ["SPECS", "TOOL_SPECS", "CheckLevel", "ListFilesArgs", "ReadFileArgs", "RunChecksArgs",
           "SubmitArgs", "ToolCall", "ToolName", "ToolSpec", "WriteFileArgs", "anthropic_tools",
           "check_call", "openai_tools", "parse_anthropic_call", "parse_openai_call"]
