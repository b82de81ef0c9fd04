"""Agent traces -> a compact, ordered record a teacher can read (issue 11).

Two inputs are understood:
- Markdown: a transcript whose headings name the speaker or step ("## User",
  "### Tool call: bash", "### Result", "## Error", "## Final answer", ...). Text
  under an unrecognised heading stays as a note, in order.
- JSONL: one JSON object per line, either a Claude Code session export
  (`{"type": "user"|"assistant", "message": {"role", "content": str | [blocks]}}`
  with `text`, `tool_use`, `tool_result` blocks) or plain chat messages
  (`{"role": "user"|"assistant"|"tool", "content", "tool_calls": [...]}`, the
  OpenAI shape). Lines of other types (summaries, snapshots) are skipped and counted.

What the teacher sees: user asks, assistant text, tool calls (name and input),
tool results truncated to head and tail, errors kept longer (they carry the lesson),
and the final answer. Strings that look like keys or tokens are replaced by
`[REDACTED]` before anything leaves this module; the record counts them.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from harness.common.errors import UserError
from harness.inputs.skills import CHARS_PER_TOKEN

log = logging.getLogger(__name__)

__all__ = ["TraceEvent", "TraceRecord", "load_trace", "redact", "TRACE_SUFFIXES"]

EventKind = Literal["user", "assistant", "tool_call", "tool_result", "error", "final", "note"]

#: File suffixes read as traces (anything else under --from must be a skill folder).
TRACE_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "markdown",
                  ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
#: Larger files are refused before reading: a session export of this size is mostly tool output.
MAX_FILE_BYTES = 50 * 1024 * 1024
RESULT_CHARS = 600
"""Tool results keep this many characters (head and tail); errors keep ERROR_CHARS."""
ERROR_CHARS = 1500
TEXT_CHARS = 4000

# Key- and token-shaped strings. Each pattern's last group is what gets replaced.
_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"),       # Anthropic / OpenAI
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),                         # Hugging Face
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),                  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bxox[abpr]-[A-Za-z0-9\-]{10,}"),                # Slack
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),                          # AWS access key id
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),                     # Google API key
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),  # JWT
]
# NAME=value / "name": "value" where NAME says key, token, secret or password.
_ASSIGNED = re.compile(
    r"(?i)((?:api[_-]?key|access[_-]?key|secret|token|password|passwd|auth)[A-Za-z0-9_]*"
    r"[\"']?\s*[:=]\s*[\"']?)"
    # the value must mix letters and digits: "author: someone" or "max_tokens: 4096" are not secrets
    r"((?=[^\s\"',;]*\d)(?=[^\s\"',;]*[A-Za-z])[^\s\"',;]{8,})")
_BEARER = re.compile(r"(?i)(\bBearer\s+)([A-Za-z0-9._\-~+/]{16,}=*)")


def redact(text: str) -> tuple[str, int]:
    """(text with key-like strings replaced by [REDACTED], how many were replaced)."""
    count = 0

    def sub(pattern: re.Pattern[str], text: str, keep_prefix: bool) -> str:
        nonlocal count

        def repl(m: re.Match[str]) -> str:
            nonlocal count
            if m.group(0).endswith("[REDACTED]") or (keep_prefix and m.group(2) == "[REDACTED]"):
                return m.group(0)
            count += 1
            return (m.group(1) if keep_prefix else "") + "[REDACTED]"

        return pattern.sub(repl, text)

    for pattern in _SECRET_PATTERNS:
        text = sub(pattern, text, keep_prefix=False)
    text = sub(_BEARER, text, keep_prefix=True)
    text = sub(_ASSIGNED, text, keep_prefix=True)
    return text, count


class TraceEvent(BaseModel):
    kind: EventKind
    text: str
    tool: str | None = None
    """The tool's name, for tool_call events (and tool_result events when known)."""
    truncated: bool = False


class TraceRecord(BaseModel):
    source: str
    format: Literal["markdown", "jsonl"]
    events: list[TraceEvent] = Field(default_factory=list)
    redactions: int = 0
    """Key- or token-like strings replaced by [REDACTED]."""
    skipped_lines: int = 0
    """JSONL lines of types that carry no conversation (summaries, file snapshots)."""

    def render(self) -> str:
        """The compact text the teacher sees, in the trace's order."""
        labels = {"user": "USER", "assistant": "AGENT", "tool_call": "TOOL CALL", "tool_result": "RESULT",
                  "error": "ERROR", "final": "FINAL ANSWER", "note": "NOTE"}
        out = []
        for i, ev in enumerate(self.events, 1):
            label = labels[ev.kind] + (f" {ev.tool}" if ev.tool else "")
            out.append(f"[{i}] {label}{' (truncated)' if ev.truncated else ''}:\n{ev.text.strip()}")
        return "\n\n".join(out) + "\n"

    def chunks(self, max_chars: int) -> list[str]:
        """The rendered record in consecutive pieces of at most `max_chars` (whole events,
        numbered as in render(); an event longer than a piece is clipped to fit)."""
        pieces: list[str] = []
        current = ""
        rendered = self.render().rstrip("\n").split("\n\n[")
        for n, part in enumerate(rendered):
            part = part if n == 0 else "[" + part
            if len(part) > max_chars:
                part, _ = _clip(part, max_chars - 60)
            if current and len(current) + 2 + len(part) > max_chars:
                pieces.append(current + "\n")
                current = ""
            current = f"{current}\n\n{part}" if current else part
        if current:
            pieces.append(current + "\n")
        return pieces

    @property
    def estimated_tokens(self) -> int:
        return math.ceil(len(self.render()) / CHARS_PER_TOKEN)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for ev in self.events:
            found[ev.kind] = found.get(ev.kind, 0) + 1
        return found


def _clip(text: str, limit: int) -> tuple[str, bool]:
    text = text.strip()
    if len(text) <= limit:
        return text, False
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}", True


_ERROR_HINT = re.compile(r"(?im)^.*\b(error|failed|traceback|exception|undefined reference)\b")


def _event(kind: EventKind, text: str, tool: str | None = None) -> TraceEvent | None:
    if not text or not text.strip():
        return None
    if kind == "tool_result" and _ERROR_HINT.search(text):
        kind = "error"
    limit = {"tool_result": RESULT_CHARS, "error": ERROR_CHARS}.get(kind, TEXT_CHARS)
    clipped, cut = _clip(text, limit)
    return TraceEvent(kind=kind, text=clipped, tool=tool, truncated=cut)


# --- Markdown ------------------------------------------------------------------

_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_HEADING_KINDS: list[tuple[re.Pattern[str], EventKind]] = [
    (re.compile(r"(?i)^(final( answer)?|summary|result of the task|outcome)\b"), "final"),
    (re.compile(r"(?i)^(user|human|prompt|task|request)\b"), "user"),
    (re.compile(r"(?i)^(tool[ _-]?call|tool use|call|command|run|action)\b"), "tool_call"),
    (re.compile(r"(?i)^(tool[ _-]?result|result|output|observation|stdout|stderr)\b"), "tool_result"),
    (re.compile(r"(?i)^(error|failure|failed)\b"), "error"),
    (re.compile(r"(?i)^(assistant|agent|claude|model|ai|thought|reasoning)\b"), "assistant"),
]
_TOOL_NAME = re.compile(r"[:\-—]\s*`?([\w.\-/]+)`?\s*$")


def _parse_markdown(text: str) -> list[TraceEvent]:
    events: list[TraceEvent] = []
    kind: EventKind = "note"
    tool: str | None = None
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        ev = _event(kind, "".join(buf), tool)
        if ev:
            events.append(ev)
        buf.clear()

    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m:
            flush()
            title = m.group(1)
            kind, tool = "note", None
            for pattern, k in _HEADING_KINDS:
                if pattern.match(title):
                    kind = k
                    break
            if kind == "tool_call":
                found = _TOOL_NAME.search(title)
                tool = found.group(1) if found else None
            if kind == "note":
                buf.append(title + "\n")  # an unrecognised heading keeps its words
            continue
        buf.append(line)
    flush()
    return events


# --- JSONL ---------------------------------------------------------------------

def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_content_text(c.get("text", c.get("content", ""))) if isinstance(c, dict) else str(c)
                         for c in content)
    if content is None:
        return ""
    return json.dumps(content)


def _tool_input(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict) and len(value) == 1:
        only = next(iter(value.values()))
        if isinstance(only, str):
            return only  # e.g. {"command": "nvcc ..."}: the command itself reads best
    return json.dumps(value, ensure_ascii=False)


def _from_message(role: str, content: Any, msg: dict, tool_names: dict[str, str]) -> list[TraceEvent | None]:
    out: list[TraceEvent | None] = []
    if role in ("user", "human"):
        kind: EventKind = "user"
    elif role in ("assistant", "model", "ai"):
        kind = "assistant"
    elif role in ("tool", "function"):
        name = msg.get("name") or tool_names.get(str(msg.get("tool_call_id")))
        out.append(_event("tool_result", _content_text(content), name))
        return out
    else:
        return [_event("note", _content_text(content))]
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                out.append(_event(kind, str(block)))
                continue
            btype = block.get("type")
            if btype == "text":
                out.append(_event(kind, block.get("text", "")))
            elif btype == "tool_use":
                name = str(block.get("name", "tool"))
                tool_names[str(block.get("id"))] = name
                out.append(_event("tool_call", _tool_input(block.get("input", {})), name))
            elif btype == "tool_result":
                name = tool_names.get(str(block.get("tool_use_id")))
                text = _content_text(block.get("content", ""))
                ev = _event("error" if block.get("is_error") else "tool_result", text, name)
                out.append(ev)
            # thinking, images and other blocks carry nothing the teacher can use
    else:
        out.append(_event(kind, _content_text(content)))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function", {}) if isinstance(call, dict) else {}
        name = str(fn.get("name", "tool"))
        tool_names[str(call.get("id"))] = name
        out.append(_event("tool_call", _tool_input(fn.get("arguments", "")), name))
    return out


def _parse_jsonl(text: str, source: str) -> tuple[list[TraceEvent], int]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a JSON array of messages is accepted as well
        try:
            rows = json.loads(stripped)
        except ValueError as err:
            raise UserError(f"{source}: not valid JSON: {err}") from None
        lines = [r for r in rows] if isinstance(rows, list) else []
    else:
        lines = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise UserError(f"{source}: line {n}: not JSON (a JSONL export has one JSON object per line)") from None
    events: list[TraceEvent | None] = []
    skipped = 0
    recognised = 0
    tool_names: dict[str, str] = {}
    for row in lines:
        if not isinstance(row, dict):
            skipped += 1
            continue
        msg = row.get("message") if isinstance(row.get("message"), dict) else None
        if msg is not None and row.get("type") in ("user", "assistant"):  # Claude Code
            recognised += 1
            events.extend(_from_message(str(msg.get("role", row["type"])), msg.get("content"), msg, tool_names))
        elif "role" in row and "content" in row or "tool_calls" in row:  # chat messages
            recognised += 1
            if row.get("role") == "system":
                continue  # the agent's own system prompt teaches nothing about the task
            events.extend(_from_message(str(row.get("role")), row.get("content"), row, tool_names))
        else:
            skipped += 1
    if not recognised:
        raise UserError(f"{source}: unknown export format: no line is a Claude Code message "
                        '({"type": "user"|"assistant", "message": {...}}) or a chat message ({"role", "content"})')
    found = [e for e in events if e is not None]
    # The last assistant text is the agent's final answer.
    for i in range(len(found) - 1, -1, -1):
        if found[i].kind == "assistant":
            found[i] = found[i].model_copy(update={"kind": "final"})
            break
    return found, skipped


def trace_format(path: Path) -> Literal["markdown", "jsonl"]:
    fmt = TRACE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(TRACE_SUFFIXES))
        raise UserError(f"{path}: unknown export format {path.suffix or '(no suffix)'!r} "
                        f"(a trace is one of {known}; or give a skill folder)")
    return fmt  # type: ignore[return-value]


def load_trace(path: str | Path) -> TraceRecord:
    """Read and compact a trace. UserError (one line) when it is unreadable, empty,
    of an unknown format, or holds no conversation."""
    path = Path(path)
    fmt = trace_format(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UserError(f"{path}: {size} bytes, over the {MAX_FILE_BYTES} byte limit for a trace")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such trace file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder without SKILL.md (give a skill folder or a trace file)") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (a trace is Markdown or JSONL)") from None
    if not text.strip():
        raise UserError(f"{path}: empty trace")
    text, redactions = redact(text)  # before parsing: secrets never reach an event
    if fmt == "markdown":
        events, skipped = _parse_markdown(text), 0
    else:
        events, skipped = _parse_jsonl(text, str(path))
    if not events:
        raise UserError(f"{path}: the trace holds no messages, tool calls or results")
    record = TraceRecord(source=str(path), format=fmt, events=events, redactions=redactions,
                         skipped_lines=skipped)
    log.info("%s: %d events, %d redactions, ~%d tokens", path, len(events), redactions, record.estimated_tokens)
    return record
