"""In-process tripwires of the candidate's child: things that, if seen, fail a call.

Whatever runs in the candidate's process can also undo or fake what is here, so none of it
is ever evidence FOR the candidate (docs/validation.md, "Threat model"): a tripwire can only
turn a call into a failure. The evidence the verdict rests on is taken by the parent.

  * poison: glibc fills every block it hands out with all-ones bytes (mallopt M_PERTURB), a
    NaN in every floating dtype, so an output the kernel never wrote is recognisable; no
    Python hook, nothing on the dispatch stack, so a call cannot tell it is being checked.
  * watched callables: the checker's and the timer's functions, compared by identity with
    what they were before the candidate's package was imported.
  * clock aliases: every module-level name bound to one of time's clocks before the import;
    a candidate that rebinds an alias (rather than time.perf_counter_ns itself) shows here.
  * modes left: a dispatch or torch-function mode of the candidate's still on the stack when
    its call returned, which would run its code on the judge's next touch of the output.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import sys
import time

import torch
import torch.profiler  # noqa: F401 - loaded before the snapshot in watched()
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack

M_MMAP_THRESHOLD, M_PERTURB = -3, -6
#: glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): blocks up to this
#: come from the heap, where M_PERTURB applies.
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
#: M_PERTURB's byte is XORed with 0xff for fresh blocks: 0x100 gives 0xff (all ones) on
#: allocation and 0x00 on free.
PERTURB = 0x100

_CLOCKS = ("perf_counter_ns", "perf_counter", "monotonic_ns", "monotonic", "time_ns", "time",
           "process_time_ns", "process_time", "thread_time_ns", "thread_time")


def perturb_malloc() -> str:
    """Poison every block malloc hands out from now on (this process only)."""
    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and libc.mallopt(M_PERTURB, PERTURB) == 1
    except (OSError, AttributeError):
        ok = False
    return "fresh memory poisoned (malloc perturb)" if ok else "fresh memory NOT poisoned (no glibc mallopt)"


def watched() -> dict[str, object]:
    """Callables a cheat would replace to fool the checker or the timer."""
    import torch.testing

    return {
        "time.perf_counter_ns": time.perf_counter_ns, "time.perf_counter": time.perf_counter,
        "time.time": time.time, "time.monotonic": time.monotonic, "time.process_time": time.process_time,
        "torch.allclose": torch.allclose, "torch.equal": torch.equal, "torch.isclose": torch.isclose,
        "torch.testing.assert_close": torch.testing.assert_close, "torch.save": torch.save,
        "torch.load": torch.load, "torch.Tensor.clone": torch.Tensor.clone,
        "torch.Tensor.copy_": torch.Tensor.copy_, "torch.Tensor.__eq__": torch.Tensor.__eq__,
        "torch.cuda.synchronize": torch.cuda.synchronize, "torch.cuda.Event": torch.cuda.Event,
        "torch.cuda._sleep": torch.cuda._sleep,  # the current-stream marker (sandbox/programs/devices/cuda.py)
        "torch.Generator": torch.Generator, "torch.randn": torch.randn, "torch.manual_seed": torch.manual_seed,
        "torch.profiler.profile": torch.profiler.profile, "TorchDispatchMode": TorchDispatchMode,
        "json.dumps": json.dumps, "os.write": os.write, "builtins.open": builtins.open,
    }


def changed(before: dict[str, object]) -> list[str]:
    after = watched()
    return [k for k, v in before.items() if k in after and after[k] is not v]


def clock_aliases() -> list[tuple[object, str, object]]:
    """(module, name, clock) for every module-level name that is one of time's clocks."""
    clocks = {id(getattr(time, n)): getattr(time, n) for n in _CLOCKS if hasattr(time, n)}
    found = []
    for module in list(sys.modules.values()):
        space = getattr(module, "__dict__", None)
        if not isinstance(space, dict) or module is time:
            continue
        for name, value in list(space.items()):
            if id(value) in clocks and value is clocks[id(value)]:
                found.append((module, name, value))
    return found


def rebound(aliases: list[tuple[object, str, object]]) -> list[str]:
    """Aliases of a clock that no longer name it."""
    return [f"{getattr(m, '__name__', '?')}.{n}" for m, n, v in aliases if getattr(m, n, None) is not v]


def modes_left(own: tuple = ()) -> list[str]:
    """Dispatch and torch-function modes on the stack that are not the runner's own."""
    names = [type(m).__name__ for m in _get_current_dispatch_mode_stack() if not isinstance(m, own)]
    try:
        from torch.overrides import _get_current_function_mode_stack

        names += [type(m).__name__ for m in _get_current_function_mode_stack()]
    except ImportError:  # pragma: no cover - older torch
        pass
    return names


__all__ = ["changed", "clock_aliases", "modes_left", "perturb_malloc", "rebound", "watched"]
