"""What the parent learns about a child from outside it: the kernel's view, not the child's word.

  * which host process is the child (its pid inside a pid namespace is what it can tell us;
    the NSpid line of /proc/<pid>/status maps one to the other),
  * whether every thread of it is stopped (state T in /proc/<pid>/task/*/stat),
  * the bytes at an address of its memory, read with process_vm_readv while it is stopped:
    the outputs as they were when the call returned; memory it made unreadable (PROT_NONE,
    unmapped) fails the read instead of running a fault handler of the candidate's,
  * which signals it catches (SigCgt), and which processes live in its sandbox.

Reading another process's memory needs the rights ptrace would (same user, or root; the
sandbox's user namespace belongs to the harness's user). Linux only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_ulong,
                                   ctypes.POINTER(_Iovec), ctypes.c_ulong, ctypes.c_ulong]
_libc.process_vm_readv.restype = ctypes.c_ssize_t

#: Reads go in pieces of this size, so a large output never needs one huge iovec.
CHUNK = 64 * 1024 * 1024


class Unreadable(Exception):
    """The bytes could not be read: `why` says how (protected or unmapped memory, no rights, gone)."""

    def __init__(self, why: str, got: int = 0) -> None:
        super().__init__(why)
        self.why, self.got = why, got


def read_memory(pid: int, addr: int, size: int) -> bytearray:
    """`size` bytes at `addr` in process `pid`, exactly as they are now."""
    buf = bytearray(size)
    if size == 0:
        return buf
    base = ctypes.addressof((ctypes.c_char * size).from_buffer(buf))
    done = 0
    while done < size:
        n = min(CHUNK, size - done)
        local, remote = _Iovec(base + done, n), _Iovec(addr + done, n)
        got = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got < 0:
            err = ctypes.get_errno()
            why = {14: "the memory is not readable (protected or unmapped)", 1: "no right to read its memory",
                   3: "the process is gone"}.get(err, os.strerror(err))
            raise Unreadable(why, done)
        if got < n:
            raise Unreadable("the memory is not readable past the first "
                             f"{done + got} of {size} bytes (protected or unmapped)", done + got)
        done += n
    return buf


def _stat_fields(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def threads_stopped(pid: int) -> bool | None:
    """True when every thread of `pid` is stopped, None when the process is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    if not tids:
        return None
    for tid in tids:
        fields = _stat_fields(Path(f"/proc/{pid}/task/{tid}/stat"))
        if fields is None:
            continue  # a thread that just ended
        if fields[0] == "Z" or fields[0] == "X":
            return None if tid == str(pid) else False
        if fields[0] not in ("T", "t"):
            return False
    return True


def wait_stopped(pid: int, timeout_s: float) -> bool | None:
    """Wait until every thread is stopped: True, False on timeout, None when it died."""
    deadline = time.monotonic() + timeout_s
    spins = 0
    while True:
        state = threads_stopped(pid)
        if state is not False:
            return state
        if time.monotonic() > deadline:
            return False
        spins += 1
        time.sleep(0 if spins < 50 else 0.0002)


def cont(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, for every process visible here."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(Path(f"/proc/{entry}/stat"))
        if fields is None or len(fields) < 2:
            continue
        kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def descendants(root: int) -> list[int]:
    """`root` and every process below it, parents before children."""
    kids = children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo += sorted(kids.get(pid, []))
    return out


def ns_pids(pid: int) -> list[int]:
    """The pid of `pid` in each pid namespace it belongs to, outermost first (NSpid)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return [pid]


def host_pid(root: int, inner_pid: int) -> int | None:
    """The host pid of the process under `root` whose innermost pid is `inner_pid`."""
    found = [p for p in descendants(root) if ns_pids(p)[-1] == inner_pid and (p != root or inner_pid == root)]
    return found[-1] if found else None


def caught_signals(pid: int) -> set[int]:
    """Signals the process has handlers for (SigCgt), as the kernel keeps them."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                mask = int(line.split()[1], 16)
                return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    except (OSError, ValueError):
        pass
    return set()


def is_alive(pid: int) -> bool:
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return fields is not None and fields[0] not in ("Z", "X")


__all__ = ["Unreadable", "caught_signals", "cont", "descendants", "host_pid", "is_alive", "ns_pids",
           "read_memory", "stop", "threads_stopped", "wait_stopped"]
