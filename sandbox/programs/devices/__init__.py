"""Device strategies for the runner (DESIGN.md "Devices: the run path is device-generic").

Only four things differ by device: the timer, the cache flush between timed calls,
the evidence that the candidate's own code ran, and synchronisation. Everything
else (inputs, poisoning, mutation checks, op tracing, statistics) is shared code
in sandbox/programs/child_common.py and harness/execute/runner.py.

These classes are used inside the child processes (they import torch lazily) and,
for `available()` / defaults, in the parent.
"""

from __future__ import annotations

from sandbox.programs.devices.base import DeviceStrategy, Evidence, Timer


def get_device(name: str) -> DeviceStrategy:
    if name == "cpu":
        from sandbox.programs.devices.cpu import CpuDevice

        return CpuDevice()
    if name == "cuda":
        from sandbox.programs.devices.cuda import CudaDevice

        return CudaDevice()
    raise ValueError(f"unknown device {name!r} (cpu or cuda)")


__all__ = ["DeviceStrategy", "Evidence", "Timer", "get_device"]
