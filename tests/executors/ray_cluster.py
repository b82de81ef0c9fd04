"""A real Ray cluster of several nodes on this machine (ray.cluster_utils.Cluster), for the
executor tests and the benchmark. The nodes share this machine's disk, but nothing in the
executor relies on that: tasks carry their content."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

FAKE_NVCC = '#!/bin/sh\necho "nvcc: NVIDIA (R) Cuda compiler driver"\necho "Cuda compilation tools, release 12.4, V12.4.131"\n'


def ray_or_missing():
    try:
        import ray
    except ImportError:
        from tests.prereq import missing

        missing("ray is not installed", "bash scripts/setup.sh installs the [ray] extra")
    return ray


@contextlib.contextmanager
def pinned_sha() -> Iterator[None]:
    """KERNELGRADE_GIT_SHA set to this checkout's commit for the driver and every node started
    inside (they inherit it): the nodes run this very checkout, but a commit landing mid-test
    (others work in it too) would otherwise make their git sha differ from the driver's."""
    from harness.executors.node import _static_env
    from harness.store.provenance import environment

    before = os.environ.get("KERNELGRADE_GIT_SHA")
    os.environ["KERNELGRADE_GIT_SHA"] = environment(with_torch=False)["git_sha"] or "none"
    _static_env.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KERNELGRADE_GIT_SHA", None)
        else:
            os.environ["KERNELGRADE_GIT_SHA"] = before
        _static_env.cache_clear()


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
