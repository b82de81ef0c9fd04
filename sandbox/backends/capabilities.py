"""What each backend contains, by escape: the mechanism, or None where it cannot.

The escape tests (tests/sandbox/test_escape.py) check every row against a real
attempt, so a row claiming containment that does not hold fails a test.
"""

from __future__ import annotations

import functools
import os

ESCAPES = (
    "env_secret",     # read an API key from the environment
    "home_read",      # read a file under the real $HOME
    "write_outside",  # write a file outside the workspace
    "network",        # open a network connection
    "fork_bomb",
    "memory_bomb",
    "infinite_loop",  # including a background grandchild in the same process group
    "detached_child",  # a grandchild that setsid()s out of the process group
    "output_flood",
)

_COMMON = {
    "env_secret": "environment reduced to an allowlist; names with KEY/TOKEN/SECRET/PASSWORD/AUTH dropped",
    "memory_bomb": "RLIMIT_AS address-space limit",
    "output_flood": "only the tail of each stream is kept; the rest is counted, not buffered",
}

LOCAL: dict[str, str | None] = {
    **_COMMON,
    # Same uid, same filesystem: HOME points into the workspace, but the real home
    # is still readable by absolute path, and any writable place stays writable.
    "home_read": None,
    "write_outside": None,
    "network": None,
    "infinite_loop": "wall-clock timeout kills the process group",
    # Only a pids cgroup finds a process that left the group; see contains().
    "detached_child": None,
}

BWRAP: dict[str, str | None] = {
    **_COMMON,
    "env_secret": "bwrap gets only the allowlisted environment; " + _COMMON["env_secret"],
    "home_read": "mount namespace: the real home is not mounted; HOME is an empty tmpfs",
    "write_outside": "mount namespace: system read-only, /tmp and HOME tmpfs, only the workspace bound writable",
    "network": "own network namespace (--unshare-net): no interfaces but an empty loopback",
    "infinite_loop": "wall-clock timeout kills bwrap; --die-with-parent and the pid namespace take every process with it",
    "detached_child": "own pid namespace: when its init dies the kernel kills every process in it",
}

CONTAINER: dict[str, str | None] = {
    **_COMMON,
    "env_secret": "only the allowlisted environment is passed with -e; " + _COMMON["env_secret"],
    "home_read": "container filesystem: only the workspace and read-only mounts are visible",
    "write_outside": "container filesystem: only the workspace mount is writable (--read-only root)",
    "network": "--network none",
    "memory_bomb": "--memory cgroup limit (and RLIMIT_AS for CPU work)",
    "infinite_loop": "wall-clock timeout kills the engine client; the container is removed by name (--rm, kill)",
    "detached_child": "the container's pid namespace ends with the container",
    "fork_bomb": "--pids-limit cgroup",
}


@functools.lru_cache(maxsize=1)
def pids_mechanism() -> str | None:
    """How a fork bomb is bounded for local and bwrap on this machine, or None."""
    from sandbox.cgroup import PidsCgroup

    probe = PidsCgroup.create(64)
    if probe is not None:
        probe.remove()
        return "cgroup pids.max"
    if os.geteuid() != 0:
        return "RLIMIT_NPROC"
    return None  # root is exempt from RLIMIT_NPROC and no pids cgroup is writable


def contains(backend: str, escape: str) -> str | None:
    """The mechanism `backend` contains `escape` with here, or None when it does not."""
    if escape not in ESCAPES:
        raise KeyError(f"unknown escape {escape!r}; known: {', '.join(ESCAPES)}")
    if escape == "fork_bomb" and backend in ("local", "bwrap"):
        return pids_mechanism()
    if escape == "detached_child" and backend == "local" and pids_mechanism() == "cgroup pids.max":
        return "the pids cgroup: cleanup kills every member, in any process group"
    table = {"local": LOCAL, "bwrap": BWRAP, "container": CONTAINER}[backend]
    return table[escape]


__all__ = ["BWRAP", "CONTAINER", "ESCAPES", "LOCAL", "contains", "pids_mechanism"]
