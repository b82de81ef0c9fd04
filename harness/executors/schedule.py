"""The scheduling decisions, as pure functions (tested on fake devices and fake nodes).

Local: compile slots bounded by cores and by memory (a torch-binding unit peaks near 2.6 GB);
one lane per GPU, each pinned with CUDA_VISIBLE_DEVICES, so two run steps (and so two
timings) never share a GPU; CPU-timing lanes on disjoint cores, so a CPU timing never shares
cores with another timing. `LaneBook` hands out lanes and slots; it holds no lock and starts
nothing, the executor wraps it.

Ray: the resources each step asks for (`ray_options`), which node's toolchain is the
reference and which nodes are left out, and why (`plan_nodes`), and the level `auto` means
on a cluster (`cluster_level`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.common.errors import UserError
from harness.common.results import Device, Level
from harness.executors.node import NodeInfo, differences, fingerprint
from harness.executors.tasks import Need

#: Peak memory of one torch-binding compile unit (issue 18: "around 2.6 GB").
GB_PER_COMPILE_UNIT = 2.6
GIB = 1024 ** 3
#: The custom resource every node declares once (`ray start --resources='{"kg_timing": 1}'`):
#: a CPU-device timing holds it, so two timings never overlap on a node.
TIMING_RESOURCE = "kg_timing"


def compile_slots(cores: int, available_bytes: int | None, *, gb_per_unit: float = GB_PER_COMPILE_UNIT) -> int:
    """Compiles at once: at most one per core and one per `gb_per_unit` of available memory;
    at least one. Unknown memory counts as enough for one."""
    by_memory = 1 if available_bytes is None else int(available_bytes // int(gb_per_unit * GIB))
    return max(1, min(max(cores, 1), by_memory))


@dataclass(frozen=True)
class Lane:
    """Where a device step runs locally: one GPU, or a set of cores for CPU timing, or a slot
    of the shared pool (kind "pool") for compile and plain CPU steps."""

    name: str
    kind: str
    """gpu | cpu_timing | pool"""
    gpu: str | None = None
    cpus: tuple[int, ...] | None = None
    """Cores the lane's process is bound to (None: not bound)."""
    env: tuple[tuple[str, str], ...] = ()
    """Environment the lane's process runs with (CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS)."""

    @property
    def pinned(self) -> bool:
        """Needs a process of its own (an environment or cores that differ from the driver's)."""
        return bool(self.env) or self.cpus is not None


def gpu_lanes(gpus: list[str]) -> list[Lane]:
    """One lane per GPU, each seeing only its GPU."""
    return [Lane(name=f"gpu:{g}", kind="gpu", gpu=g, env=(("CUDA_VISIBLE_DEVICES", g),)) for g in gpus]


def cpu_timing_lanes(cores: list[int], count: int = 1) -> list[Lane]:
    """`count` lanes over disjoint sets of `cores` (as even as can be). One lane takes the
    whole machine unbound, as a plain run does today."""
    if count < 1:
        raise UserError("CPU timing lanes: at least one")
    if count == 1:
        return [Lane(name="cpu-timing:0", kind="cpu_timing")]
    if count > len(cores):
        raise UserError(f"CPU timing lanes: {count} lanes need at least {count} cores, {len(cores)} here")
    size, extra = divmod(len(cores), count)
    lanes, start = [], 0
    for i in range(count):
        n = size + (1 if i < extra else 0)
        chunk = tuple(cores[start:start + n])
        start += n
        lanes.append(Lane(name=f"cpu-timing:{i}", kind="cpu_timing", cpus=chunk,
                          env=(("OMP_NUM_THREADS", str(len(chunk))),)))
    return lanes


@dataclass
class LaneBook:
    """Who holds what. `acquire(need)` gives a free lane (or None: wait), `release` returns it.
    GPU steps take a GPU lane, CPU timings a CPU-timing lane, the rest a pool slot."""

    lanes: list[Lane]
    slots: int
    busy: set[str] = field(default_factory=set)
    pool_busy: set[int] = field(default_factory=set)

    def _kind(self, need: Need) -> str:
        return {"gpu": "gpu", "cpu_timing": "cpu_timing"}.get(need, "pool")

    def can_serve(self, need: Need) -> bool:
        kind = self._kind(need)
        return kind == "pool" or any(lane.kind == kind for lane in self.lanes)

    def acquire(self, need: Need) -> Lane | None:
        kind = self._kind(need)
        if kind == "pool":
            free = next((i for i in range(self.slots) if i not in self.pool_busy), None)
            if free is None:
                return None
            self.pool_busy.add(free)
            return Lane(name=f"pool:{free}", kind="pool")
        lane = next((ln for ln in self.lanes if ln.kind == kind and ln.name not in self.busy), None)
        if lane is not None:
            self.busy.add(lane.name)
        return lane

    def release(self, lane: Lane) -> None:
        if lane.kind == "pool":
            self.pool_busy.discard(int(lane.name.split(":")[1]))
        else:
            self.busy.discard(lane.name)


def ray_options(need: Need, *, compile_gb: float = GB_PER_COMPILE_UNIT) -> dict:
    """The explicit resources of one Ray task for a step of this need."""
    if need == "gpu":
        return {"num_cpus": 1, "num_gpus": 1}
    if need == "cpu_timing":
        return {"num_cpus": 1, "resources": {TIMING_RESOURCE: 1}}
    if need == "compile":
        return {"num_cpus": 1, "memory": int(compile_gb * GIB)}
    return {"num_cpus": 1}


def needs_of(level: Level, device: Device, *, timing: bool) -> set[Need]:
    """What the steps of a batch at this level and device need (for node eligibility)."""
    if level == "text":
        return {"cpu"}
    if level == "compile":
        return {"compile"}
    return {"compile", "gpu" if device == "cuda" else ("cpu_timing" if timing else "cpu")}


def serves(resources: dict[str, float], need: Need) -> bool:
    """Can a node with these total resources run a step of this need?"""
    if resources.get("CPU", 0) < 1:
        return False
    if need == "gpu":
        return resources.get("GPU", 0) >= 1
    if need == "cpu_timing":
        return resources.get(TIMING_RESOURCE, 0) >= 1
    if need == "compile":
        return resources.get("memory", float("inf")) >= GB_PER_COMPILE_UNIT * GIB
    return True


@dataclass
class NodePlan:
    reference: NodeInfo | None
    usable: list[NodeInfo]
    excluded: dict[str, str]
    """node label -> why it gets no tasks (its toolchain differs, it did not answer)."""
    idle: dict[str, str]
    """node label -> why it has nothing to do in this batch (no GPU, no CPU): not a fault."""


def plan_nodes(nodes: list[NodeInfo], resources: dict[str, dict[str, float]], needs: set[Need], *,
               head_id: str | None = None, driver: NodeInfo | None = None) -> NodePlan:
    """Which nodes grade. The reference is the head node (the cluster's first) when it can run
    the batch's device steps; where it cannot (a driver box without GPUs), the toolchain most
    of the nodes that can share (ties: the first in the order given). A node is usable when it can
    run some step and nothing in node.MATCH_KEYS differs from the reference; the reference
    itself must run the driver's kernelgrade (same version and git sha)."""
    device_needs = needs - {"cpu", "compile"} or needs

    def able(n: NodeInfo, wanted: set[Need]) -> bool:
        return any(serves(resources.get(n.node_id or "", {}), w) for w in wanted)

    candidates = [n for n in nodes if able(n, device_needs)]
    reference = next((n for n in candidates if n.node_id == head_id), None)
    if reference is None and candidates:  # the head only drives: the toolchain most nodes share
        groups: dict[str, list[NodeInfo]] = {}
        for n in candidates:
            groups.setdefault(fingerprint(n), []).append(n)
        reference = max(groups.values(), key=len)[0]
    plan = NodePlan(reference=reference, usable=[], excluded={}, idle={})
    if reference is not None and driver is not None:
        code = differences(reference, driver, keys=("kernelgrade", "git_sha"))
        if code:
            raise UserError(f"the cluster's {reference.label()} runs other code than this driver: {'; '.join(code)} "
                            "(install the same kernelgrade checkout on every node)")
    for n in nodes:
        if not able(n, needs):
            have = resources.get(n.node_id or "", {})
            plan.idle[n.label()] = (f"cannot run this batch's steps ({', '.join(sorted(needs))}) with "
                                    f"CPU={have.get('CPU', 0):g} GPU={have.get('GPU', 0):g} "
                                    f"{TIMING_RESOURCE}={have.get(TIMING_RESOURCE, 0):g}")
            continue
        why = differences(n, reference) if reference is not None else []
        if why:
            plan.excluded[n.label()] = "; ".join(why)
        else:
            plan.usable.append(n)
    return plan


def cluster_level(requested: str, device: Device, nodes: list[NodeInfo],
                  resources: dict[str, dict[str, float]]) -> Level:
    """What `--level` means on a cluster (harness.checks.levels.resolve_level's rule, read from
    the nodes instead of this machine): auto is run where a node has a GPU (or --device cpu),
    compile where a node has nvcc, else text; run on cuda with no GPU node is an error."""
    from harness.checks.levels import LEVELS

    if requested not in LEVELS:
        raise UserError(f"--level {requested}: choose one of {', '.join(LEVELS)}")
    has_gpu = any(resources.get(n.node_id or "", {}).get("GPU", 0) >= 1 for n in nodes)
    if requested == "run" and device == "cuda" and not has_gpu:
        raise UserError("--level run needs a CUDA device and no node of the Ray cluster has a GPU "
                        "(start GPU nodes with `ray start --address ...`, or use --device cpu)")
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if device == "cpu" or has_gpu:
        return "run"
    return "compile" if any(n.nvcc for n in nodes) else "text"


__all__ = ["GB_PER_COMPILE_UNIT", "Lane", "LaneBook", "NodePlan", "TIMING_RESOURCE", "cluster_level",
           "compile_slots", "cpu_timing_lanes", "gpu_lanes", "needs_of", "plan_nodes", "ray_options", "serves"]
