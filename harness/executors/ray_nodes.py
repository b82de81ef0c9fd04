"""The Ray cluster's nodes: probe each one where it is, and keep the set that may grade.

Each alive node runs a small probe task pinned to it (NodeAffinitySchedulingStrategy, no CPU
asked, so a busy node still answers) that reports its provenance (harness.executors.node).
schedule.plan_nodes then picks the reference node and leaves out every node whose toolchain
or GPU architecture differs; grading tasks are restricted to the usable nodes with a label
selector on Ray's own node-id label, so Ray still does all the placing and all the retrying,
within that set. Nodes that join later are probed as they appear.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from harness.common.errors import UserError
from harness.executors.node import NodeInfo, differences, fingerprint
from harness.executors.schedule import NodePlan, plan_nodes, serves
from harness.executors.tasks import Need

log = logging.getLogger(__name__)

NODE_ID_LABEL = "ray.io/node-id"


def alive_nodes(ray) -> dict[str, dict]:
    """node id -> ray.nodes() row, alive nodes only."""
    return {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}


def head_id(rows: dict[str, dict]) -> str | None:
    return next((nid for nid, n in rows.items() if "node:__internal_head__" in n.get("Resources", {})), None)


def submit_probe(ray, node_id: str, cache_dir: str | None):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from harness.executors.work import probe_node

    remote = ray.remote(probe_node)
    return remote.options(num_cpus=0, max_retries=1, name="kernelgrade-probe",
                          scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(cache_dir)


@dataclass
class ClusterView:
    """What the driver knows about the cluster, kept up to date by the executor."""

    needs: set[Need]
    driver: NodeInfo
    plan: NodePlan | None = None
    infos: dict[str, NodeInfo] = field(default_factory=dict)
    resources: dict[str, dict[str, float]] = field(default_factory=dict)
    alive: set[str] = field(default_factory=set)
    pending: dict[object, str] = field(default_factory=dict)
    """probe ref -> node id, for nodes that joined after the start."""

    @property
    def usable_ids(self) -> list[str]:
        return [n.node_id for n in (self.plan.usable if self.plan else []) if n.node_id]

    def selector(self) -> dict[str, str]:
        return {NODE_ID_LABEL: f"in({','.join(self.usable_ids)})"}

    def reference_fingerprint(self) -> str | None:
        return fingerprint(self.plan.reference) if self.plan and self.plan.reference else None

    def label(self, node_id: str | None) -> str:
        info = self.infos.get(node_id or "")
        return info.label() if info else (node_id or "?")[:8]

    def usable_alive(self) -> list[str]:
        return [nid for nid in self.usable_ids if nid in self.alive]

    def serve_count(self, need: Need) -> int:
        return sum(serves(self.resources.get(nid, {}), need) for nid in self.usable_alive())


def probe_all(ray, view: ClusterView, *, cache_dir: str | None, timeout_s: float) -> tuple[str | None, dict[str, str]]:
    """Probe every alive node, wait up to `timeout_s`; (head id, label -> why not answered)."""
    rows = alive_nodes(ray)
    view.alive = set(rows)
    view.resources = {nid: dict(n.get("Resources", {})) for nid, n in rows.items()}
    refs = {submit_probe(ray, nid, cache_dir): nid for nid in rows}
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    silent: dict[str, str] = {}
    for ref in ready:
        try:
            info = NodeInfo.model_validate(ray.get(ref))
        except Exception as err:  # a node that cannot run kernelgrade at all
            silent[refs[ref][:8]] = f"probe failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
            continue
        view.infos[refs[ref]] = info
    for ref in late:
        silent[refs[ref][:8]] = f"did not answer the probe within {timeout_s:g} s"
        ray.cancel(ref, force=True)
    return head_id(rows), silent


def initial_plan(view: ClusterView, head: str | None, silent: dict[str, str]) -> NodePlan:
    infos = list(view.infos.values())
    plan = plan_nodes(infos, view.resources, view.needs, head_id=head, driver=view.driver)
    plan.excluded.update(silent)
    if plan.reference is None:
        raise UserError(no_node_message(view.needs, view.resources))
    view.plan = plan
    return plan


def no_node_message(needs: set[Need], resources: dict[str, dict[str, float]]) -> str:
    if "gpu" in needs:
        what = "a GPU (start GPU nodes with `ray start --address HEAD:6379`)"
    elif "cpu_timing" in needs:
        what = ("the CPU-timing resource (start nodes with `ray start ... --resources='{\"kg_timing\": 1}'`: "
                "one per node, so two timings never overlap on a node)")
    else:
        what = "a CPU"
    return f"no node of the Ray cluster ({len(resources)} alive) has {what}"


def refresh(ray, view: ClusterView, *, cache_dir: str | None) -> None:
    """Note deaths; probe nodes that joined since the last look."""
    rows = alive_nodes(ray)
    view.alive = set(rows)
    for nid, row in rows.items():
        view.resources.setdefault(nid, dict(row.get("Resources", {})))
        if nid not in view.infos and nid not in view.pending.values():
            view.pending[submit_probe(ray, nid, cache_dir)] = nid


def admit(view: ClusterView, node_id: str, info: NodeInfo) -> str | None:
    """A probed newcomer joins the usable set, or the reason it does not."""
    assert view.plan is not None and view.plan.reference is not None
    view.infos[node_id] = info
    if not any(serves(view.resources.get(node_id, {}), need) for need in view.needs):
        view.plan.idle[info.label()] = "cannot run this batch's steps"
        return None
    why = differences(info, view.plan.reference)
    if why:
        view.plan.excluded[info.label()] = "; ".join(why)
        log.warning("ray: %s gets no tasks: %s", info.label(), "; ".join(why))
        return "; ".join(why)
    view.plan.usable.append(info)
    log.info("ray: %s joined", info.label())
    return None


def describe(view: ClusterView) -> list[str]:
    plan = view.plan
    if plan is None or plan.reference is None:
        return ["ray: no plan"]
    ref = plan.reference
    lines = [f"ray: {len(plan.usable)} node(s) grade: {', '.join(n.label() for n in plan.usable)}; toolchain of "
             f"{ref.label()}: torch {ref.torch}, nvcc {ref.nvcc or 'none'}, GPU arch {ref.gpu_arch or 'none'}"]
    for label, why in sorted(plan.excluded.items()):
        lines.append(f"ray: {label} gets no tasks: {why}")
    for label, why in sorted(plan.idle.items()):
        lines.append(f"ray: {label} idle: {why}")
    return lines


def wait_for_nodes(ray, count: int, timeout_s: float = 60.0) -> None:
    """Block until `count` nodes are alive (tests and the benchmark start clusters)."""
    deadline = time.monotonic() + timeout_s
    while len(alive_nodes(ray)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} Ray nodes alive after {timeout_s:g} s")
        time.sleep(0.2)


__all__ = ["ClusterView", "NODE_ID_LABEL", "admit", "alive_nodes", "describe", "initial_plan", "probe_all",
           "refresh", "wait_for_nodes"]
