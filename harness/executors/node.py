"""What a node is: its GPUs, driver, torch, nvcc and kernelgrade, and the rule for which
nodes may grade together (DESIGN.md "Provenance").

Read without importing torch or touching CUDA (nvidia-smi and package metadata only), so a
probe costs milliseconds and never creates a CUDA context in a worker that later runs a
pinned task. Every grade records the node it ran on; a node whose toolchain differs from
the reference node's gets no work (`differences` says why).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess

from pydantic import BaseModel, Field

#: What must be equal on every node that grades one run: the code (kernelgrade and its git
#: sha), Python, the CPU architecture, torch (its build carries the CUDA version: +cu130),
#: nvcc, and the GPUs' compute capability. Driver versions and GPU names are recorded, not
#: matched: a driver patch release does not change what compiles or how it runs.
MATCH_KEYS = ("kernelgrade", "git_sha", "python", "machine", "torch", "nvcc", "gpu_arch")


class GpuInfo(BaseModel):
    index: str
    uuid: str | None = None
    name: str | None = None
    driver: str | None = None
    compute_cap: str | None = None


class NodeInfo(BaseModel):
    """A node's provenance, as its probe (or the local machine) reports it."""

    host: str
    node_id: str | None = None
    kernelgrade: str | None = None
    git_sha: str | None = None
    python: str | None = None
    machine: str | None = None
    torch: str | None = None
    nvcc: str | None = None
    cpu: str | None = None
    cores: int | None = None
    gpus: list[GpuInfo] = Field(default_factory=list)
    gpu_arch: str | None = None
    """Compute capabilities of its GPUs, sorted and comma-joined ("9.0"); None without GPUs."""
    driver: str | None = None

    def label(self) -> str:
        short = f" {self.node_id[:8]}" if self.node_id else ""
        return f"{self.host}{short}"

    def gpu(self, pin: str | None) -> GpuInfo | None:
        """The GPU a CUDA_VISIBLE_DEVICES value names (an index or a UUID), if known."""
        if not pin:
            return None
        first = pin.split(",")[0].strip()
        return next((g for g in self.gpus if first in (g.index, g.uuid)), None)


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def nvcc_version() -> str | None:
    """The release line of `nvcc --version` ("Cuda compilation tools, release 13.0, V13.0.88")."""
    from harness.build.toolchain import find_nvcc

    try:
        nvcc = find_nvcc()
    except Exception:  # a broken toolchain reads as none
        nvcc = None
    path = str(nvcc.path) if nvcc else shutil.which("nvcc")
    if not path:
        return None
    out = _run([path, "--version"]) or ""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return next((ln for ln in lines if "release" in ln), lines[-1] if lines else None)


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Rows of `nvidia-smi --query-gpu=index,uuid,name,driver_version,compute_cap
    --format=csv,noheader` (pure)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 5 and parts[0].isdigit():
            gpus.append(GpuInfo(index=parts[0], uuid=parts[1] or None, name=parts[2] or None,
                                driver=parts[3] or None, compute_cap=parts[4] or None))
    return gpus


def query_gpus() -> list[GpuInfo]:
    """Every GPU nvidia-smi lists (all of the node's, whatever CUDA_VISIBLE_DEVICES says)."""
    if not shutil.which("nvidia-smi"):
        return []
    out = _run(["nvidia-smi", "--query-gpu=index,uuid,name,driver_version,compute_cap",
                "--format=csv,noheader"])
    return parse_nvidia_smi(out or "")


def _dist_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _static_env() -> dict:
    """kernelgrade, its git sha and the CPU model (harness.store.provenance), once per process."""
    from harness.store.provenance import environment

    return environment(with_torch=False)


def local_node(node_id: str | None = None) -> NodeInfo:
    """This machine's provenance (the probe every node runs)."""
    gpus = query_gpus()
    env = _static_env()
    caps = sorted({g.compute_cap for g in gpus if g.compute_cap})
    drivers = sorted({g.driver for g in gpus if g.driver})
    return NodeInfo(host=socket.gethostname(), node_id=node_id, kernelgrade=env.get("kernelgrade"),
                    git_sha=env.get("git_sha"),
                    python=".".join(platform.python_version_tuple()[:2]), machine=platform.machine(),
                    torch=_dist_version("torch"), nvcc=nvcc_version(), cpu=env.get("cpu"), cores=os.cpu_count(),
                    gpus=gpus, gpu_arch=",".join(caps) or None, driver=",".join(drivers) or None)


@functools.cache
def cached_local_node(node_id: str | None = None) -> NodeInfo:
    """local_node once per process (a worker asks for every step it runs)."""
    return local_node(node_id)


def fingerprint(info: NodeInfo) -> str:
    """sha256 over the MATCH_KEYS values: equal fingerprints grade alike."""
    values = {k: getattr(info, k) for k in MATCH_KEYS}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def differences(node: NodeInfo, reference: NodeInfo, *, keys: tuple[str, ...] = MATCH_KEYS) -> list[str]:
    """Why `node` may not grade with `reference` (pure): one phrase per key that differs."""
    out = []
    for key in keys:
        mine, theirs = getattr(node, key), getattr(reference, key)
        if mine != theirs:
            out.append(f"{key} {mine or 'none'!s} differs from {reference.label()}'s {theirs or 'none'!s}")
    return out


__all__ = ["GpuInfo", "MATCH_KEYS", "NodeInfo", "cached_local_node", "differences", "fingerprint",
           "local_node", "nvcc_version", "parse_nvidia_smi", "query_gpus"]
