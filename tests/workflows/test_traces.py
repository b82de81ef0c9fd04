"""Trace parsing (issue 11) on the labelled trace fixtures and small inline inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.common.errors import UserError
from harness.workflows.traces import RESULT_CHARS, load_trace, redact

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "traces"
FAKE_HF = "hf_FAKEfixtureTOKEN1234567890abcd"
FAKE_ANT = "sk-ant-api03-FAKEfixtureKEY0123456789abcdef"


def test_markdown_trace_keeps_order_errors_fix_and_final_answer() -> None:
    record = load_trace(FIX / "h100-rmsnorm.md")
    kinds = [e.kind for e in record.events]
    assert record.format == "markdown"
    assert kinds.index("user") < kinds.index("error") < kinds.index("final") == len(kinds) - 1
    error = next(e for e in record.events if e.kind == "error")
    assert 'has no member "Tensor"' in error.text
    after_error = record.render().split('has no member "Tensor"', 1)[1]
    assert "<torch/all.h>" in after_error  # the fix follows the failure
    assert [e.tool for e in record.events if e.kind == "tool_call"] == ["write_file", "bash", "edit_file", "bash"]
    assert record.redactions == 1 and FAKE_HF not in record.render() and "[REDACTED]" in record.render()


def test_claude_code_jsonl_export() -> None:
    record = load_trace(FIX / "h100-rmsnorm.jsonl")
    assert record.format == "jsonl" and record.skipped_lines == 1  # the summary line
    kinds = [e.kind for e in record.events]
    assert kinds[0] == "user" and kinds[-1] == "final"
    calls = [(e.tool, e.text) for e in record.events if e.kind == "tool_call"]
    assert [c[0] for c in calls] == ["Write", "Bash", "Edit", "Bash"]
    assert calls[3][1].startswith("nvcc -arch=sm_90")  # a lone "command" input reads as the command
    error = next(e for e in record.events if e.kind == "error")
    assert error.tool == "Bash" and "namespace" in error.text  # is_error and the tool's name kept
    assert record.redactions == 1 and FAKE_ANT not in record.render()
    assert "H100 is sm_90" not in record.render()  # thinking blocks are left out


def test_openai_style_chat_messages(tmp_path: Path) -> None:
    rows = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Build it"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "shell", "arguments": json.dumps({"cmd": "nvcc x.cu"})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "x.cu(1): error: identifier \"foo\" is undefined"},
        {"role": "assistant", "content": "Fixed by declaring foo."},
    ]
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    record = load_trace(path)
    assert [e.kind for e in record.events] == ["user", "tool_call", "error", "final"]
    assert record.events[1].tool == "shell" and record.events[2].tool == "shell"
    assert "You are an agent" not in record.render()


def test_long_tool_output_is_cut_to_head_and_tail(tmp_path: Path) -> None:
    long = "\n".join(f"line {i} ok" for i in range(2000))
    path = tmp_path / "t.md"
    path.write_text(f"## User\nbuild\n\n### Result\n{long}\n")
    result = load_trace(path).events[1]
    assert result.truncated and len(result.text) < RESULT_CHARS + 100
    assert "line 0 ok" in result.text and "line 1999 ok" in result.text and "characters cut" in result.text


@pytest.mark.parametrize("text, count", [
    ("key sk-proj-abcdefghijklmnop1234 end", 1),
    ("AWS AKIAABCDEFGHIJKLMNOP here", 1),
    ("gh token ghp_abcdefghijklmnopqrstuvwxyz012345", 1),
    ('"api_key": "abc123def456ghi789"', 1),
    ("Authorization: Bearer abcdefghijklmnop1234567", 1),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", 1),
    ("author: kernelgrade-tests, max_tokens: 4096, tokens: 1234567890", 0),
    ("cuda-capabilities = [\"9.0\"]", 0),
])
def test_redaction(text: str, count: int) -> None:
    out, n = redact(text)
    assert n == count
    assert ("[REDACTED]" in out) == (count > 0)


@pytest.mark.parametrize("name, content, message", [
    ("empty.md", "  \n\n", "empty trace"),
    ("binary.jsonl", b"\xff\xfe\x00bad", "not UTF-8"),
    ("trace.pdf", "%PDF", "unknown export format"),
    ("other.jsonl", '{"event": "click", "x": 1}\n{"event": "scroll"}\n', "unknown export format"),
    ("broken.jsonl", '{"role": "user", "content": "hi"}\n{not json\n', "line 2: not JSON"),
])
def test_bad_traces_are_one_clear_line(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError) as err:
        load_trace(path)
    assert message in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_trace(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such trace file"):
        load_trace(tmp_path / "nope.md")


def test_chunks_keep_every_event_in_order_within_the_size() -> None:
    record = load_trace(FIX / "h100-rmsnorm.jsonl")
    pieces = record.chunks(400)
    assert len(pieces) > 2 and all(len(p) <= 400 for p in pieces)
    numbers = [int(line[1:].split("]")[0]) for p in pieces for line in p.splitlines() if line.startswith("[")
               and line[1:].split("]")[0].isdigit()]
    assert numbers == list(range(1, len(record.events) + 1))
