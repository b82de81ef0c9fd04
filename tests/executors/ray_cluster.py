"""A real Ray cluster of several nodes on this machine (ray.cluster_utils.Cluster), for the
executor tests and the benchmark. The nodes share this machine's disk, but nothing in the
executor relies on that: tasks carry their content."""

from __future__ import annotations

import os
from pathlib import Path

FAKE_NVCC = '#!/bin/sh\necho "nvcc: NVIDIA (R) Cuda compiler driver"\necho "Cuda compilation tools, release 12.4, V12.4.131"\n'


def ray_or_missing():
    try:
        import ray
    except ImportError:
        from tests.prereq import missing

        missing("ray is not installed", "bash scripts/setup.sh installs the [ray] extra")
    return ray


def fake_nvcc_dir(folder: Path) -> Path:
    """A folder whose `nvcc` reports CUDA 12.4: a node with it first on PATH has another toolchain."""
    folder.mkdir(parents=True, exist_ok=True)
    nvcc = folder / "nvcc"
    nvcc.write_text(FAKE_NVCC)
    nvcc.chmod(0o755)
    return folder


def start_cluster(workers: list[dict], *, home: Path, head_cpus: int = 0):
    """A head (driving only, by default) and one node per entry of `workers` (add_node kwargs);
    each node's grading home is `home`. Returns (cluster, nodes)."""
    from ray.cluster_utils import Cluster

    env = {"KERNELGRADE_HOME": str(home)}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "env_vars": env})
    nodes = []
    for spec in workers:
        spec = dict(spec)
        spec["env_vars"] = env | spec.get("env_vars", {})
        nodes.append(cluster.add_node(**spec))
    cluster.wait_for_nodes()
    return cluster, nodes


def timing_node(cpus: int = 1, **kw) -> dict:
    return {"num_cpus": cpus, "resources": {"kg_timing": 1}, **kw}


def other_toolchain_node(fake: Path) -> dict:
    return timing_node(env_vars={"PATH": f"{fake}:{os.environ['PATH']}"})
