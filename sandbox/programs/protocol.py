"""The conversation between the runner (the trusted parent) and a child: JSON lines both ways.

The parent drives it. It starts the child with two pipes (requests in, replies out) and an
input ring (a memfd it shares with the child), sends one `setup` line, then one request at a
time, each only when it is due:

  setup    what to load and the layout of every call's inputs in the ring
  call     run call i on the inputs in its slot (which the parent has just written)
  replay   run call i again on the same bytes, this time under the runner's observers
  save     write call i's outputs and inputs to call_<i>.pt in the workspace (an artifact)
  status   the in-process tripwires (replaced callables, rebound clocks) as they are now
  outputs  (reference child) compute the reference on the inputs in a file the parent wrote

The child answers `hello` (its pid), `loaded` (or `fatal`), then exactly one reply per
request, and after each reply stops itself (SIGSTOP) until the parent continues it with
the next request. Nothing the child sends is taken as a finding in its favour: a reply only
says where the outputs lie, and the parent reads them itself while the child is stopped.
Any line the parent did not ask for is a protocol violation (harness/execute/session.py).
"""

from __future__ import annotations

import json
import os
import select
import time

# Bound before any candidate code can run in the child.
_os_read = os.read
_os_write = os.write
_json_dumps = json.dumps
_json_loads = json.loads

#: One reply may not be longer than this (a replay's trace is the longest).
MAX_LINE = 4 * 1024 * 1024
#: Inputs start at multiples of this in the ring (any dtype's alignment, a cache line).
ALIGN = 64


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def send(fd: int, obj: dict) -> None:
    """One JSON line on `fd`, written whole."""
    view = memoryview((_json_dumps(obj) + "\n").encode())
    while view:
        view = view[_os_write(fd, view):]


class LineReader:
    """JSON lines from a pipe. `next(timeout)` returns one decoded line, None on timeout,
    and raises EOFError when the writer has gone. Lines that are not JSON objects come
    back as {"kind": "garbage", "text": ...}, so the caller can count them."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def _line(self) -> dict | None:
        nl = self.buf.find(b"\n")
        if nl < 0:
            if len(self.buf) > MAX_LINE:
                text = bytes(self.buf[:200])
                self.buf.clear()
                return {"kind": "garbage", "text": f"a line longer than {MAX_LINE} bytes: {text!r}"}
            return None
        raw = bytes(self.buf[:nl])
        del self.buf[:nl + 1]
        try:
            obj = _json_loads(raw)
        except ValueError:
            return {"kind": "garbage", "text": raw[:200].decode("utf-8", "replace")}
        return obj if isinstance(obj, dict) else {"kind": "garbage", "text": raw[:200].decode("utf-8", "replace")}

    def pending(self) -> bool:
        return b"\n" in self.buf

    def next(self, timeout: float | None = None) -> dict | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            line = self._line()
            if line is not None:
                return line
            if self.eof:
                raise EOFError
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left is not None:
                ready, _, _ = select.select([self.fd], [], [], left)
                if not ready:
                    return None
            chunk = _os_read(self.fd, 65536)
            if not chunk:
                self.eof = True
                if self.buf:  # a last line without its newline
                    self.buf += b"\n"
                continue
            self.buf += chunk

    def drain(self) -> list[dict]:
        """Every complete line already sent, without waiting."""
        out = []
        while True:
            try:
                line = self.next(timeout=0)
            except EOFError:
                return out
            if line is None:
                return out
            out.append(line)


def tensor_spec(offset: int, shape: list[int], stride: list[int], dtype: str) -> dict:
    """Where one input tensor lies in the ring (the child's view of it)."""
    return {"t": [offset, list(shape), list(stride), dtype]}


def span_elements(shape: list[int], stride: list[int]) -> int:
    """Elements between a strided tensor's first and last element, both included."""
    if any(s == 0 for s in shape):
        return 0
    return 1 + sum((n - 1) * st for n, st in zip(shape, stride))


__all__ = ["ALIGN", "LineReader", "MAX_LINE", "align", "send", "span_elements", "tensor_spec"]
