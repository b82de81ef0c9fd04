"""Resource limits for untrusted work and the reduced environment it sees."""

from __future__ import annotations

import os
import re
import resource
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Limits for one sandboxed command. Defaults fit a torch-binding compile (~3 GB)."""

    wall_s: float = 600.0
    """Wall-clock timeout; the whole process group is killed when it passes."""
    cpu_s: int = 1200
    memory_mb: int = 6144
    """Address-space limit (RLIMIT_AS). CUDA contexts reserve huge virtual ranges,
    so GPU runs pass memory_mb=0 (no AS limit) and rely on the container/cgroup."""
    file_mb: int = 1024
    nproc: int = 512
    """Processes for this user. nvcc and ninja fork several; a fork bomb hits it fast."""
    output_bytes: int = 256 * 1024
    """stdout/stderr kept per stream: the tail. The rest is counted, not buffered."""


# Names passed through to untrusted commands. Anything else (API keys, tokens,
# cloud credentials, the user's HOME) stays behind.
ENV_ALLOW = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ",
    "CUDA_HOME", "CUDA_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH", "TORCH_CUDA_ARCH_LIST", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "VIRTUAL_ENV",
)
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)


def scrubbed_env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The allowlisted environment with HOME and TMPDIR pointed into the workspace.

    `extra` is added last but still filtered, so a caller cannot leak a key by accident.
    """
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.update({"HOME": home, "TMPDIR": home, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"})
    for key, value in (extra or {}).items():
        if not _SECRET.search(key):
            env[key] = value
    return env


def apply_rlimits(limits: Limits) -> None:
    """Called in the child between fork and exec (preexec_fn)."""
    def cap(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_CPU, int(limits.cpu_s))
    if limits.memory_mb:
        cap(resource.RLIMIT_AS, int(limits.memory_mb) * MB)
    cap(resource.RLIMIT_FSIZE, int(limits.file_mb) * MB)
    cap(resource.RLIMIT_NPROC, int(limits.nproc))
    cap(resource.RLIMIT_CORE, 0)
