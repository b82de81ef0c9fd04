"""What the teacher starts from: --from (a skill or a trace, compacted to its budget), --tool schemas,
and the seeded train / held-out split."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from harness.common.errors import UserError
from harness.inputs.skills import (
    CHARS_PER_TOKEN,
    SKILL_FILE,
    load_skill,
    validate_skill,
)
from harness.models.registry import ModelSpec
from harness.workflows import teacher as T
from harness.workflows.generate_context import GenerateContext
from harness.workflows.generate_options import (
    DEFAULT_TEACHER_CONTEXT,
    LOCAL_CONTEXT,
    MAX_TRACE_CHUNKS,
    MIN_CHUNK_TOKENS,
    MIN_SUMMARY_TOKENS,
    PROMPT_OVERHEAD,
    GenerateOptions,
)


def load_tools(paths: list[Path]) -> list[dict[str, Any]]:
    """MCP tool schemas: one tool object, a list of them, or {"tools": [...]}."""
    tools: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: no such tool schema file (--tool)") from None
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: cannot read (--tool): {err}") from None
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
        items = data.get("tools", [data]) if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            raise UserError(f"{path}: expected a tool object, a list of tools, or {{\"tools\": [...]}}")
        for i, tool in enumerate(items):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"].strip():
                raise UserError(f"{path}: tool {i}: name: missing (an MCP tool has name, description, inputSchema)")
            schema = tool.get("inputSchema", tool.get("input_schema", tool.get("parameters")))
            if schema is not None and not isinstance(schema, dict):
                raise UserError(f"{path}: tool {tool['name']}: inputSchema: must be a JSON object")
            tools.append({"name": tool["name"], "description": tool.get("description", ""),
                          "inputSchema": schema or {}})
    return tools


def tools_text(tools: list[dict[str, Any]]) -> str:
    if not tools:
        return ""
    return ("The skill must teach correct use of these MCP tools (name, purpose, input schema):\n"
            + "\n".join(json.dumps(t, ensure_ascii=False) for t in tools) + "\n\n")


def teacher_context(opts: GenerateOptions, spec: ModelSpec) -> int:
    if opts.teacher_context:
        return opts.teacher_context
    return LOCAL_CONTEXT if spec.provider == "local" else DEFAULT_TEACHER_CONTEXT


def read_source(opts: GenerateOptions, spec: ModelSpec) -> dict[str, Any]:
    """What --from gives: {"kind": none|skill|trace, ...}; UserError for anything unusable."""
    path = opts.from_path
    if path is None:
        return {"kind": "none"}
    if path.is_dir() or path.name.lower() == "skill.md":
        folder = path if path.is_dir() else path.parent
        if not (folder / SKILL_FILE).is_file():
            raise UserError(f"{path}: a folder without {SKILL_FILE} (give a skill folder or a trace file)")
        errors = [f for f in validate_skill(folder) if f.severity == "error"]
        if errors:
            raise UserError(f"{folder}: invalid skill: {errors[0].key}: {errors[0].reason} (--from)")
        skill = load_skill(folder)
        files = {SKILL_FILE: skill.text}
        for sub in ("references", "scripts", "assets"):
            for file in sorted((folder / sub).rglob("*")) if (folder / sub).is_dir() else []:
                if file.is_file():
                    try:
                        files[file.relative_to(folder).as_posix()] = file.read_text(encoding="utf-8")
                    except UnicodeDecodeError:
                        raise UserError(f"{file}: not UTF-8 text; generate keeps text files only") from None
        return {"kind": "skill", "path": str(folder.resolve()), "name": skill.name, "files": files}
    from harness.workflows.traces import load_trace

    record = load_trace(path)
    context = teacher_context(opts, spec)
    budget = context - opts.teacher_max_tokens - PROMPT_OVERHEAD
    found = {"kind": "trace", "path": str(path), "format": record.format, "events": record.counts(),
             "redactions": record.redactions, "skipped_lines": record.skipped_lines,
             "estimated_tokens": record.estimated_tokens, "budget_tokens": budget}
    if record.estimated_tokens <= budget:
        return found | {"text": record.render()}
    # Too long for one prompt: the teacher summarises it piece by piece (run_generate), and the
    # summaries together must fit where the trace would have gone.
    limit = (f"the teacher's budget for a trace is {budget} tokens (context {context} - answer "
             f"{opts.teacher_max_tokens} - instructions {PROMPT_OVERHEAD}; raise --teacher-context)")
    if budget < MIN_CHUNK_TOKENS:
        raise UserError(f"{path}: the compacted trace is ~{record.estimated_tokens} tokens (chars/4) and "
                        f"{limit}, too small to summarise it in pieces of at least {MIN_CHUNK_TOKENS}")
    chunks = record.chunks(budget * CHARS_PER_TOKEN)
    if len(chunks) > MAX_TRACE_CHUNKS or budget // len(chunks) < MIN_SUMMARY_TOKENS:
        raise UserError(f"{path}: the compacted trace is ~{record.estimated_tokens} tokens (chars/4), "
                        f"{len(chunks)} pieces to summarise, more than this budget allows: {limit}; "
                        "shorten the trace")
    return found | {"text": None, "chunks": chunks, "summary_tokens": min(opts.teacher_max_tokens,
                                                                         budget // len(chunks))}


def trace_summary(ctx: GenerateContext) -> None:
    """Summarise a long trace in pieces, each call stored (steps trace-1..n); once per run."""
    source = ctx.steps.get("source") or {}
    if source.get("kind") != "trace" or source.get("text") is not None:
        return
    assert ctx.teacher is not None
    chunks = source["chunks"]
    parts = []
    for i, chunk in enumerate(chunks, 1):
        ctx.hooks.on_phase(f"teacher: summarising the trace, part {i} of {len(chunks)}")
        request = T.summary_request(ctx.opts.task, chunk=chunk, index=i, total=len(chunks),
                                    max_tokens=source["summary_tokens"], temperature=ctx.opts.teacher_temperature)
        summary = T.ask(ctx.teacher, request, log_=ctx.steps, step=f"trace-{i}", attempts=ctx.opts.teacher_attempts,
                        accept=T.accept_summary)
        parts.append(f"[part {i} of {len(chunks)}, summarised]\n{summary}")
    text = "\n\n".join(parts) + "\n"
    source["text"] = text
    source["summarised_in"] = len(chunks)
    ctx.steps.put("source", source)
    if T.estimate_tokens(text) > source["budget_tokens"]:
        raise UserError(f"{source['path']}: the summaries of the trace are ~{T.estimate_tokens(text)} tokens, "
                        f"still over the teacher's budget of {source['budget_tokens']}; shorten the trace")


def source_context(source: dict[str, Any]) -> str:
    if source["kind"] == "trace":
        return ("Below is a compacted record of an expert agent doing this task (tool outputs truncated, "
                "secrets redacted). Distil what it learned, above all the errors it hit and how it fixed "
                f"them.\n<trace>\n{source['text']}</trace>\n\n")
    return ""


def split_cases(ids: list[str], *, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, holdout): sorted ids shuffled by `seed`; at least one case on each side."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    n_hold = min(max(1, round(len(order) * fraction)), len(order) - 1)
    return sorted(order[n_hold:]), sorted(order[:n_hold])
