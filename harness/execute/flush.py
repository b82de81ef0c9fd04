"""The cache flush between timed calls, done by the parent: no object of it lives in a child.

CPU: the parent writes a buffer of at least twice the last-level cache while the child is
stopped, one plain thread per core (memset; not torch's thread pool, whose idle threads
would go on spinning on the cores the child is about to use); the LLC is shared and the
writers cover every core's private caches, so the child's next call starts cold. CUDA: the parent fills a buffer of at least
twice L2 from its own CUDA context (L2 is the device's, not a context's) and synchronises.
Where the parent has no device to do that with, the child is asked to flush itself (the
request says so) and the report says the flush ran in the candidate's reach.
"""

from __future__ import annotations

import ctypes
import os
import threading

import torch

from sandbox.programs.devices import get_device


class ParentFlush:
    def __init__(self, device: str) -> None:
        self.device = device
        self.buf: torch.Tensor | None = None
        self.host: ctypes.Array | None = None
        if device == "cpu":
            n = get_device("cpu").flush_bytes()
            self.host = (ctypes.c_char * n)()
            cores = max(1, len(os.sched_getaffinity(0)))
            step = -(-n // cores)
            base = ctypes.addressof(self.host)
            self.parts = [(base + lo, min(step, n - lo)) for lo in range(0, n, step)]
        elif torch.cuda.is_available():
            self.buf = torch.empty(get_device(device).flush_bytes(), dtype=torch.uint8, device="cuda")

    @property
    def in_parent(self) -> bool:
        return self.buf is not None or self.host is not None

    def __call__(self, i: int) -> bool:
        """Flush before call `i`; False when the child must do it."""
        if self.host is not None:
            workers = [threading.Thread(target=ctypes.memset, args=(addr, i & 0xFF, size)) for addr, size in self.parts]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            return True
        if self.buf is None:
            return False
        self.buf.fill_(i & 0xFF)
        torch.cuda.synchronize()
        return True


__all__ = ["ParentFlush"]
