"""The sm_90 parts kernelgrade knows, each row with its source, and how a device is matched to
one (pure: from recorded properties, so it is tested without a GPU).

A device is identified by its name, then confirmed by its SM count and memory size: a row
matches only when all three agree. A MIG slice (fewer SMs), an odd memory size or a name the
table does not know is "not in the table", and its limits are then the measured ones only.

Figures are peak HBM bandwidth (bytes/s) and dense BF16 tensor-core throughput (FLOP/s): NVIDIA
quotes BF16 "with sparsity"; the dense figure is half of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TB = 1e12
GIB = 1024 ** 3


@dataclass(frozen=True)
class Part:
    """One row of the table."""

    name: str
    """What the report calls it, e.g. 'H100 SXM5'."""
    pattern: str
    """Regex on the CUDA device name (case-insensitive), e.g. torch's 'NVIDIA H100 80GB HBM3'."""
    sms: int
    """Streaming multiprocessors of the full (non-MIG) part."""
    memory_gib: tuple[float, float]
    """Range of total memory the device reports, in GiB (the driver keeps some back)."""
    bandwidth: float
    """Peak memory bandwidth, bytes/s."""
    bf16_dense: float
    """Dense BF16 tensor throughput, FLOP/s."""
    source: str
    """Where the figures come from (NVIDIA's document, or what stands in for one)."""


H100_DATASHEET = "NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100/)"
H200_DATASHEET = "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200/)"
GH200_DATASHEET = "NVIDIA GH200 Grace Hopper Superchip datasheet (nvidia.com/en-us/data-center/grace-hopper-superchip/)"
H800_DATASHEET = "NVIDIA H800 Tensor Core GPU datasheet (China market)"
H20_SOURCE = ("NVIDIA H20 product brief as reported by OEMs and press (no public NVIDIA datasheet): "
              "96 GB HBM3, 4.0 TB/s, 148 dense FP16/BF16 TFLOPS")

#: Most specific names first: 'H100 NVL' and 'H100 PCIe' before plain 'H100', 'GH200' before 'H200'.
PARTS: tuple[Part, ...] = (
    Part("GH200 (144 GB HBM3e)", r"\bGH200\b", 132, (130, 146), 4.9 * TB, 989.5 * TB, GH200_DATASHEET),
    Part("GH200 (96 GB HBM3)", r"\bGH200\b", 132, (88, 98), 4.0 * TB, 989.5 * TB, GH200_DATASHEET),
    Part("H200 NVL", r"\bH200 NVL\b", 132, (130, 146), 4.8 * TB, 835.5 * TB, H200_DATASHEET),
    Part("H200 SXM", r"\bH200\b", 132, (130, 146), 4.8 * TB, 989.5 * TB, H200_DATASHEET),
    Part("H100 NVL", r"\bH100 NVL\b", 132, (88, 96), 3.9 * TB, 835.5 * TB, H100_DATASHEET),
    Part("H100 PCIe", r"\bH100 PCIe\b", 114, (75, 82), 2.0 * TB, 756.5 * TB, H100_DATASHEET),
    Part("H100 SXM5", r"\bH100\b", 132, (75, 82), 3.35 * TB, 989.5 * TB, H100_DATASHEET),
    Part("H800 PCIe", r"\bH800 PCIe\b", 114, (75, 82), 2.0 * TB, 756.5 * TB, H800_DATASHEET),
    Part("H800 SXM5", r"\bH800\b", 132, (75, 82), 3.35 * TB, 989.5 * TB, H800_DATASHEET),
    Part("H20", r"\bH20\b", 78, (88, 98), 4.0 * TB, 148 * TB, H20_SOURCE),
)


@dataclass(frozen=True)
class DeviceProps:
    """What the device says about itself (torch.cuda.get_device_properties, the driver)."""

    name: str
    sms: int
    total_memory: int
    """Bytes."""
    major: int = 9
    minor: int = 0
    uuid: str = ""
    driver: str = ""
    """The driver's version ('550.54.15'), or the CUDA driver API version where that is all there is."""
    clock_mhz: int | None = None
    """SM clock where known (informational; the table's figures are at the rated clocks)."""


@dataclass(frozen=True)
class Match:
    """The outcome of a lookup: the row, or why there is none."""

    part: Part | None
    reason: str


def identify(props: DeviceProps) -> Match:
    """The table's row for `props`, or None with the reason (shown in the report)."""
    if (props.major, props.minor) != (9, 0):
        return Match(None, f"{props.name}: compute capability {props.major}.{props.minor}, the table holds sm_90 "
                           "parts only")
    gib = props.total_memory / GIB
    named = [p for p in PARTS if re.search(p.pattern, props.name, re.IGNORECASE)]
    if not named:
        return Match(None, f"{props.name!r} is not in the table of sm_90 parts")
    for part in named:
        lo, hi = part.memory_gib
        if props.sms == part.sms and lo <= gib <= hi:
            return Match(part, f"{props.name}: {part.name} ({props.sms} SMs, {gib:.0f} GiB)")
    first = named[0]
    if all(p.sms != props.sms for p in named):
        why = f"{props.sms} SMs where the table's {first.name} has {first.sms} (a MIG slice or another part?)"
    else:
        why = f"{gib:.1f} GiB of memory, outside the table's range for {first.name}"
    return Match(None, f"{props.name}: {why}")


__all__ = ["DeviceProps", "Match", "PARTS", "Part", "identify"]
