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
            _sweep_stale(parent)
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
        """Live members; zombies are left out (they are dead, only not yet reaped by
        whoever adopted them, and stay listed until then)."""
        try:
            members = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []
        return [pid for pid in members if not _is_zombie(pid)]

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
        killed: set[int] = set()
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
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        return len(killed)

    def remove(self) -> None:
        """rmdir once every member is gone. Unreaped zombies keep a cgroup busy; then it
        is left for `_sweep_stale` to remove on a later run."""
        deadline = time.monotonic() + 2.0
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if time.monotonic() > deadline or not self.pids():
                    if time.monotonic() > deadline:
                        log.warning("could not remove cgroup %s: %s", self.path, exc)
                    if not self.pids():
                        time.sleep(0.05)  # zombies: give their new parent a moment to reap
                        try:
                            self.path.rmdir()
                        except OSError:
                            log.debug("cgroup %s left for a later sweep (unreaped zombies)", self.path)
                    return
                self.kill_all(timeout_s=0.5)
                time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # gone already
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _sweep_stale(parent: Path) -> None:
    """Remove cgroups left by harness processes that no longer exist."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith("run-") and entry.is_dir()):
            continue
        try:
            owner = int(name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
            try:
                entry.rmdir()
            except OSError:
                pass


__all__ = ["PidsCgroup"]
