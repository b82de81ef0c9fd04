"""A per-command pids cgroup: bounds process count where RLIMIT_NPROC cannot, and
kills every member on cleanup, including grandchildren that left the process group.

RLIMIT_NPROC is not enforced for root (the kernel exempts the initial user), so a
harness running as root needs this to stop a fork bomb. Where no writable pids
cgroup exists (most non-root setups), `PidsCgroup.create` returns None and the
caller relies on the rlimit.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

_V1_ROOT = Path("/sys/fs/cgroup/pids")
_V2_ROOT = Path("/sys/fs/cgroup")


def _own_v2_dir() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return _V2_ROOT / line[3:].lstrip("/")
    except OSError:
        pass
    return None


def _parent_dir() -> Path | None:
    """Where to create our cgroups: a writable v1 pids hierarchy, else our own v2 cgroup
    when it delegates the pids controller."""
    if (_V1_ROOT / "cgroup.procs").exists() and os.access(_V1_ROOT, os.W_OK):
        return _V1_ROOT / "kernelgrade"
    own = _own_v2_dir()
    if own is not None and (own / "cgroup.subtree_control").exists() and os.access(own, os.W_OK):
        try:
            if "pids" not in (own / "cgroup.subtree_control").read_text().split():
                (own / "cgroup.subtree_control").write_text("+pids")
            return own / "kernelgrade"
        except OSError:
            return None
    return None


class PidsCgroup:
    """One cgroup for one sandboxed command: `pids.max`, join from the child, kill all."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        parent = _parent_dir()
        if parent is None:
            return None
        path = parent / f"run-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            parent.mkdir(exist_ok=True)
            path.mkdir()
            (path / "pids.max").write_text(str(int(limit)))
        except OSError as exc:
            log.debug("no pids cgroup at %s: %s", path, exc)
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path, limit)

    def join_self(self) -> None:
        """Called in the child between fork and exec: move it (and its future children) in."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def times_limit_hit(self) -> int:
        """How many forks pids.max refused (from pids.events)."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every member until none is left; return how many were killed.

        pids.max stops the set from growing faster than we kill it."""
        killed = 0
        if (self.path / "cgroup.kill").exists():
            try:
                (self.path / "cgroup.kill").write_text("1")
            except OSError:
                pass
        deadline = time.monotonic() + timeout_s
        while (members := self.pids()) and time.monotonic() < deadline:
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        return killed

    def remove(self) -> None:
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    log.warning("could not remove cgroup %s: %s", self.path, exc)
                    return
                self.kill_all(timeout_s=0.5)
                time.sleep(0.05)


__all__ = ["PidsCgroup"]
