"""The environment a run was made in, stored with every run so results can be traced."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

from harness.common.paths import repo_root


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _llc_bytes() -> int | None:
    """Largest cache size reported for cpu0 (the last-level cache)."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip()
        mult = {"K": 1024, "M": 1024**2}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KM")) * mult)
        except ValueError:
            pass
    return max(sizes) if sizes else None


@functools.cache
def kernelgrade_version() -> str:
    """Cached: it is stamped on every grade, and the metadata lookup costs ~0.3 ms."""
    return _version("kernelgrade") or "0+unknown"


def environment(*, with_torch: bool = True) -> dict:
    """Versions and hardware. torch is imported only when asked (it takes seconds)."""
    env: dict = {
        "kernelgrade": kernelgrade_version(),
        # KERNELGRADE_GIT_SHA: the commit a checkout without .git (an archive, a wheelhouse install)
        # was made from; it names the code, so a Ray cluster's nodes can be matched on it.
        "git_sha": os.environ.get("KERNELGRADE_GIT_SHA") or _run(["git", "rev-parse", "--short", "HEAD"],
                                                                 cwd=repo_root()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "llc_bytes": _llc_bytes(),
        "kernels": _version("kernels"),
        "openai": _version("openai"),
        "anthropic": _version("anthropic"),
    }
    nvcc = shutil.which("nvcc")
    if nvcc:
        out = _run([nvcc, "--version"]) or ""
        env["nvcc"] = out.splitlines()[-1] if out else None
    if with_torch:
        try:
            import torch

            env["torch"] = torch.__version__
            env["torch_cuda"] = torch.version.cuda
            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                env["gpu"] = props.name
                env["gpu_l2_bytes"] = getattr(props, "L2_cache_size", None)
                env["driver"] = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        except ImportError:
            env["torch"] = None
    return env
