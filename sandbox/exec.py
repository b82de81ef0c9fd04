"""Run an untrusted command: own session, rlimits, scrubbed env, wall-clock kill of
the whole process group, bounded output. Backends wrap the command line
(sandbox/backends/); this module owns the process lifecycle.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.cgroup import PidsCgroup
from sandbox.limits import Limits, apply_rlimits, scrubbed_env


@dataclass
class ExecResult:
    returncode: int | None
    """None when the command was killed by the timeout."""
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    backend: str
    stdout_bytes: int = 0
    """Total bytes the command wrote to stdout (only the tail is kept)."""
    stderr_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    """What the sandbox had to do this time (killed by timeout, output truncated, ...)."""
    guards: list[str] = field(default_factory=list)
    """The containment in force for this command ("processes: cgroup pids.max=64",
    "network: none (own network namespace)", ...), so a report can say how it was contained."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            return signal.Signals(-self.returncode).name
        return None


class _TailReader(threading.Thread):
    """Drain a pipe, keeping only the last `keep` bytes so a flood cannot fill memory."""

    def __init__(self, stream, keep: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.keep = stream, keep
        self.buf = bytearray()
        self.total = 0

    def run(self) -> None:
        while chunk := self.stream.read(65536):
            self.total += len(chunk)
            self.buf += chunk
            if len(self.buf) > 2 * self.keep:
                del self.buf[: len(self.buf) - self.keep]

    def text(self) -> str:
        data = bytes(self.buf[-self.keep:])
        prefix = f"[... {self.total - len(data)} bytes cut ...]\n" if self.total > len(data) else ""
        return prefix + data.decode("utf-8", errors="replace")


def run_local(
    cmd: list[str],
    *,
    cwd: Path,
    limits: Limits = Limits(),
    env: dict[str, str] | None = None,
    stdin_data: bytes | None = None,
    pass_fds: tuple[int, ...] = (),
    backend_name: str = "local",
    apply_limits: bool = True,
    guards: list[str] | None = None,
    use_cgroup: bool = True,
    on_start: Callable[[int], None] | None = None,
) -> ExecResult:
    """Start `cmd` in its own session with rlimits; kill its process group on timeout.

    `env` is used as given (callers build it with scrubbed_env); None means scrubbed_env(cwd).
    `guards` are the caller's (backend's) own containment lines, reported in the result.
    With `use_cgroup`, a writable pids cgroup (if any) bounds the process count and
    lets cleanup kill members that left the process group. `on_start(pid)` is called once
    the command runs, with the pid of the process started (its process group has the same
    id): a caller that talks to the command can end it early with os.killpg.
    """
    env = env if env is not None else scrubbed_env(str(cwd))
    guards = list(guards or [])
    cgroup = PidsCgroup.create(limits.nproc) if (use_cgroup and apply_limits) else None
    if apply_limits:
        guards += _limit_guards(limits, cgroup)
    guards.append(f"wall clock: process group killed after {limits.wall_s:g} s")
    guards.append(f"output: last {limits.output_bytes} bytes kept per stream, the rest counted and dropped")

    def preexec() -> None:
        if cgroup is not None:
            cgroup.join_self()
        if apply_limits:
            apply_rlimits(limits)

    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, pass_fds=pass_fds,
            preexec_fn=preexec if (apply_limits or cgroup is not None) else None,
        )
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        raise
    if on_start is not None:
        on_start(proc.pid)
    readers = [_TailReader(proc.stdout, limits.output_bytes), _TailReader(proc.stderr, limits.output_bytes)]
    for r in readers:
        r.start()
    if stdin_data is not None:
        try:
            proc.stdin.write(stdin_data)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    timed_out = False
    notes: list[str] = []
    try:
        proc.wait(timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        notes.append(f"killed after {limits.wall_s:g} s wall-clock (whole process group)")
    finally:
        # Always clear the group: a child may have left grandchildren behind.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        if cgroup is not None:
            # Members that setsid()'d into another group survive killpg; not these.
            if stray := cgroup.kill_all():
                notes.append(f"killed {stray} leftover process(es) outside the process group (cgroup)")
            if hit := cgroup.times_limit_hit():
                notes.append(f"process limit reached: cgroup pids.max={limits.nproc} refused {hit} fork(s)")
            cgroup.remove()
    join_deadline = time.monotonic() + 5
    for r in readers:
        r.join(timeout=max(0.0, join_deadline - time.monotonic()))
        if r.is_alive():
            notes.append("a process outside the sandbox's reach still holds an output pipe; stopped reading")
    out, err = readers
    for name, r in (("stdout", out), ("stderr", err)):
        if r.total > limits.output_bytes:
            notes.append(f"{name} truncated: kept the last {limits.output_bytes} of {r.total} bytes")
    return ExecResult(
        returncode=None if timed_out else proc.returncode, stdout=out.text(), stderr=err.text(),
        timed_out=timed_out, wall_s=time.monotonic() - start, backend=backend_name,
        stdout_bytes=out.total, stderr_bytes=err.total, notes=notes, guards=guards,
    )


def _limit_guards(limits: Limits, cgroup: PidsCgroup | None) -> list[str]:
    lines = [f"cpu: RLIMIT_CPU={int(limits.cpu_s)} s"]
    lines.append(f"memory: RLIMIT_AS={int(limits.memory_mb)} MB" if limits.memory_mb
                 else "memory: no address-space limit (memory_mb=0)")
    lines.append(f"files: RLIMIT_FSIZE={int(limits.file_mb)} MB")
    if cgroup is not None:
        lines.append(f"processes: cgroup pids.max={limits.nproc}")
    elif os.geteuid() == 0:
        # The kernel exempts root from RLIMIT_NPROC; say so rather than claim a limit.
        lines.append(f"processes: RLIMIT_NPROC={limits.nproc} set but NOT enforced (running as root, no pids cgroup)")
    else:
        lines.append(f"processes: RLIMIT_NPROC={limits.nproc} (counts every process of uid {os.getuid()})")
    return lines
