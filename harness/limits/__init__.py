"""Physical limits of the device a kernel is timed on (issue 22): the table of sm_90 parts with
sources, measured copy bandwidth and BF16 matmul throughput (CUDA) or STREAM-like copy bandwidth
(CPU), cached per device; the physics floor and the roofline figures computed from them."""

from harness.limits.device import DeviceLimits, Limit, combine, cpu_limits, cuda_limits, device_limits
from harness.limits.parts import PARTS, DeviceProps, Match, Part, identify
from harness.limits.roofline import (ROOFLINE_KEYS, floor_ns, floor_problem, fmt_fraction, roofline_metrics,
                                     roofline_summary)

__all__ = ["DeviceLimits", "DeviceProps", "Limit", "Match", "PARTS", "Part", "ROOFLINE_KEYS", "combine",
           "cpu_limits", "cuda_limits", "device_limits", "floor_ns", "floor_problem", "identify",
           "fmt_fraction", "roofline_metrics", "roofline_summary"]
