"""One sandboxed child and the parent's side of the conversation with it
(sandbox/programs/protocol.py).

The parent sends a request, continues the child (SIGCONT), waits for exactly one reply to
that request and for the child to have stopped itself again, and only then looks: it reads
the outputs from the child's memory (harness/execute/memory.py) while nothing of the
candidate's can run. Its own clock runs from the request to the stop. Every line it did
not ask for, a second reply, a reply out of order, a child that does not stop, is a
protocol violation: the records of the candidate's process are not evidence, so one that
is forged is a finding in itself. When the last result is in, the parent counts what else
lives in the sandbox and kills it all: no exit hook of the candidate's gets a turn.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.execute import memory
from sandbox.exec import ExecResult
from sandbox.limits import Limits
from sandbox.programs import protocol
from sandbox.run import run_sandboxed

#: What an output may not exceed (bytes): a reply claiming more is not read.
MAX_OUTPUT_BYTES = 8 * 1024 * 1024 * 1024
#: How long a child may take to stop itself after its reply before the parent stops it.
STOP_GRACE_S = 5.0
REPLY_KINDS = {"call": {"ret"}, "replay": {"ret"}, "save": {"saved"}, "outputs": {"outputs"}, "status": {"status"}}
_DTYPES = {name: getattr(torch, name) for name in (
    "float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool",
    "complex64", "complex128")}


class SessionDied(Exception):
    """The child ended (crash, timeout, kill) before answering: `result` says how."""

    def __init__(self, why: str, result: ExecResult | None) -> None:
        super().__init__(why)
        self.why, self.result = why, result


class LoadFailed(Exception):
    """The child answered `fatal` (its package did not load)."""


@dataclass
class Reply:
    msg: dict
    parent_ns: int
    """The parent's clock from sending the request to seeing the child stopped again."""
    reply_ns: int = 0
    """... to the reply's arrival (the rest is the child stopping and the parent seeing it)."""


@dataclass
class SessionEnd:
    result: ExecResult | None
    violations: list[str]
    leftover: list[str]
    """Processes in the sandbox besides the child (and the sandbox's own), when its last result came in."""


@dataclass
class ChildSession:
    module: str
    workdir: Path
    setup: dict
    device: str
    sandbox: str
    wall_s: float
    memory_mb: int
    ro_paths: tuple[Path, ...]
    ring_fd: int = -1
    violations: list[str] = field(default_factory=list)
    loaded: dict = field(default_factory=dict)
    pid: int | None = None
    """The child's host pid, once it said hello."""

    def __post_init__(self) -> None:
        self.seq = 0
        self.root: int | None = None
        self._started = threading.Event()
        self._result: ExecResult | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._req_w = self._res_r = -1
        self._end: SessionEnd | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float | None = None) -> dict:
        """Start the child, send the setup, wait for `loaded` (raises SessionDied, LoadFailed)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        req_r, self._req_w = os.pipe()
        self._res_r, res_w = os.pipe()
        self.reader = protocol.LineReader(self._res_r)
        passed = (req_r, res_w) + ((self.ring_fd,) if self.ring_fd >= 0 else ())
        limits = Limits(wall_s=self.wall_s, cpu_s=int(self.wall_s * 4) + 60,
                        memory_mb=self.memory_mb if self.device == "cpu" else 0, file_mb=4096, nproc=1024)
        from harness.execute.programs import programs_root

        programs = programs_root()
        cmd = [sys.executable, "-m", self.module, str(req_r), str(res_w)]

        def on_start(pid: int) -> None:
            self.root = pid
            self._started.set()

        def target() -> None:
            try:
                self._result = run_sandboxed(cmd, cwd=self.workdir, limits=limits, backend=self.sandbox,
                                             env_extra={"PYTHONPATH": str(programs)},
                                             ro_paths=tuple({programs, Path(sys.prefix), *self.ro_paths}),
                                             gpu=self.device == "cuda", pass_fds=passed, on_start=on_start)
            except BaseException as err:  # noqa: BLE001 - reported by whoever waits for the child
                self._error = err
            finally:
                self._started.set()

        self._thread = threading.Thread(target=target, daemon=True, name=f"sandbox:{self.module}")
        self._thread.start()
        self._started.wait()
        os.close(req_r)
        os.close(res_w)
        if self._error is not None:
            raise self._error
        hello = self._next(timeout_s or self.wall_s)
        if hello.get("kind") != "hello" or not isinstance(hello.get("pid"), int):
            self.violations.append(f"first line was not the child's hello: {_short(hello)}")
            raise SessionDied("the child did not start the conversation", self._finish())
        self.pid = memory.host_pid(self.root, hello["pid"]) if self.root is not None else None
        if self.pid is None:
            raise SessionDied(f"no process with pid {hello['pid']} in the sandbox", self._finish())
        protocol.send(self._req_w, {"op": "setup", **self.setup})
        first = self._next(timeout_s or self.wall_s)
        if first.get("kind") == "fatal":
            self._finish()
            raise LoadFailed(str(first.get("error", "cannot load the candidate")))
        if first.get("kind") != "loaded":
            self.violations.append(f"expected the child's loaded line, got {_short(first)}")
        self.loaded = first
        self._await_stop()
        return first

    def _next(self, timeout_s: float) -> dict:
        """The next line, or SessionDied once the child is gone or the time is up."""
        deadline = time.monotonic() + timeout_s + 30  # the sandbox's own wall clock fires first
        while True:
            try:
                line = self.reader.next(timeout=1.0)
            except EOFError:
                raise SessionDied("the child ended", self._finish()) from None
            if line is not None:
                return line
            if self._thread is not None and not self._thread.is_alive():
                rest = self.reader.drain()
                if rest:
                    return rest[0]
                raise SessionDied("the child ended", self._finish())
            if time.monotonic() > deadline:
                raise SessionDied("no reply in time", self.kill())

    def _await_stop(self) -> bool:
        state = memory.wait_stopped(self.pid, STOP_GRACE_S)
        if state is False:
            self.violations.append("the child did not stop itself after its reply (the parent stopped it)")
            memory.stop(self.pid)
            state = memory.wait_stopped(self.pid, STOP_GRACE_S)
        return bool(state)

    def request(self, msg: dict, timeout_s: float | None = None) -> Reply:
        """Send one request, continue the child, wait for its reply and its stop."""
        self.seq += 1
        msg = {**msg, "seq": self.seq}
        wanted = REPLY_KINDS.get(msg["op"], {"error"})
        t0 = time.perf_counter_ns()
        protocol.send(self._req_w, msg)
        memory.cont(self.pid)
        while True:
            line = self._next(timeout_s or self.wall_s)
            if line.get("seq") == self.seq and line.get("kind") in wanted | {"error"}:
                break
            self.violations.append(f"during request {self.seq} ({msg['op']} {msg.get('call', '')}): "
                                   f"a line the parent did not ask for: {_short(line)}")
        t_reply = time.perf_counter_ns()
        stopped = self._await_stop()
        t1 = time.perf_counter_ns()
        for extra in self.reader.drain():
            self.violations.append(f"after the reply to request {self.seq}: a second line: {_short(extra)}")
        if not stopped:
            raise SessionDied("the child ended right after its reply", self._finish())
        return Reply(msg=line, parent_ns=t1 - t0, reply_ns=t_reply - t0)

    def read_tensor(self, desc: dict) -> torch.Tensor:
        """An output as it is in the stopped child's memory (raises memory.Unreadable, ValueError)."""
        dtype = _DTYPES.get(desc.get("dtype"))
        shape, stride = desc.get("shape"), desc.get("stride")
        if dtype is None or not isinstance(shape, list) or not isinstance(stride, list) or len(shape) != len(stride) \
                or not all(isinstance(v, int) and v >= 0 for v in (*shape, *stride)):
            raise ValueError(f"an output the parent cannot describe: {_short(desc)}")
        item = torch.empty(0, dtype=dtype).element_size()
        span = protocol.span_elements(shape, stride) * item
        if span > MAX_OUTPUT_BYTES:
            raise ValueError(f"an output of {span} bytes (more than {MAX_OUTPUT_BYTES})")
        raw = memory.read_memory(self.pid, int(desc["ptr"]), span)
        if not span:
            return torch.empty(shape, dtype=dtype)
        flat = torch.frombuffer(raw, dtype=torch.uint8).view(dtype)
        return flat.as_strided(shape, stride).clone()

    def kill(self) -> ExecResult | None:
        if self.root is not None:
            try:
                os.killpg(self.root, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return self._finish()

    def _finish(self) -> ExecResult | None:
        if self._thread is not None:
            self._thread.join(timeout=self.wall_s + 60)
        return self._result

    def close(self) -> SessionEnd:
        """Count what else runs in the sandbox, kill everything, collect the result (once)."""
        if self._end is not None:
            return self._end
        leftover: list[str] = []
        if self.root is not None and self.pid is not None and memory.is_alive(self.pid):
            tree = memory.descendants(self.root)
            chain = _chain(self.root, self.pid)
            leftover = [_describe(p) for p in tree if p not in chain and memory.is_alive(p)]
        for extra in self.reader.drain() if self._res_r >= 0 else []:
            self.violations.append(f"after the last reply: {_short(extra)}")
        result = self.kill()
        for fd in (self._req_w, self._res_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._res_r = -1
        self._end = SessionEnd(result=result, violations=list(self.violations), leftover=leftover)
        return self._end


def _chain(root: int, pid: int) -> set[int]:
    """`pid` and its ancestors up to `root`: the sandbox's own processes and the child."""
    chain, cur = {pid}, pid
    for _ in range(64):
        if cur == root:
            break
        try:
            cur = int(Path(f"/proc/{cur}/stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        chain.add(cur)
    return chain


def _describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid}" + (f" ({cmd[:80]})" if cmd else "")


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = ["ChildSession", "LoadFailed", "Reply", "SessionDied", "SessionEnd"]
