"""CUDA strategy: CUDA events, a >= 2x L2 flush buffer (written by the parent from its own
CUDA context when it has one: harness/execute/flush.py), evidence = kernels launched from
the extension in the profiler, on torch's current stream, device-wide synchronisation,
and the host copies the parent reads the outputs from.

Not exercised on hardware in this repository's CI (no GPU there); the shared runner code
it plugs into is exercised on CPU.
"""

from __future__ import annotations

from sandbox.programs.devices.base import Evidence

H100_L2_BYTES = 50 * 1024 * 1024
#: Name prefixes of kernels that PyTorch itself launches (not the candidate's own code).
#: A top-level anonymous namespace is not among them: model-written kernels often live in
#: one, and PyTorch's own kernels sit under at:: (at::native::(anonymous namespace)::...).
TORCH_KERNEL_PREFIXES = ("void at::", "at::", "Memcpy", "Memset",
                         "void cutlass::", "sm90_", "ampere_", "cublas", "void gemv", "void splitKreduce")
#: The runner's current-stream marker: torch.cuda._sleep(0) launches ATen's spin_kernel on
#: torch's current stream (aten/src/ATen/cuda/Sleep.cu: `spin_kernel<<<1, 1, 0,
#: getCurrentCUDAStream()>>>`; libtorch_cuda.so of 2.14.1 holds
#: _ZN2at4cuda..._Sleep_cu_...11spin_kernelEl, demangled at::cuda::(anonymous namespace)::spin_kernel(long)).
#: It dispatches no aten op, so the op trace does not see it.
MARKER_KERNEL = "spin_kernel"


class _CudaTimer:
    def __init__(self) -> None:
        import torch

        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record()

    def stop(self) -> int:
        import torch

        self._end.record()
        torch.cuda.synchronize()  # device-wide: work hidden on another stream is waited for too
        return int(self._start.elapsed_time(self._end) * 1e6)


def _copy_to(t, device: str):
    """A contiguous copy on `device` through torch's own empty + copy_ (bound at import)."""
    out = _empty(t.shape, dtype=t.dtype, device=device)
    _copy_(out, t)
    return out


try:  # bound before any candidate code runs in the child
    import torch as _torch

    _empty, _copy_ = _torch.empty, _torch.Tensor.copy_
except ImportError:  # pragma: no cover - the parent may import this module without torch
    pass


class CudaDevice:
    name = "cuda"
    default_timed_iters = 100
    default_warmup = 10
    default_rounds = 3

    def __init__(self) -> None:
        self._flush_buf = None

    def available(self) -> bool:
        try:
            import torch
        except ImportError:
            return False
        return bool(torch.cuda.is_available())

    def sync(self) -> None:
        import torch

        torch.cuda.synchronize()

    def timer(self) -> _CudaTimer:
        return _CudaTimer()

    def flush_bytes(self) -> int:
        import torch

        l2 = H100_L2_BYTES
        try:
            l2 = int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", l2)) or l2
        except Exception:  # noqa: BLE001 - keep the H100 figure when the property is missing
            pass
        return 2 * max(l2, H100_L2_BYTES)

    def flush(self, i: int) -> None:
        """The child-side L2 flush, used only when the parent has no CUDA context of its own
        to flush from (harness/execute/flush.py); the candidate could reach this one."""
        import torch

        if self._flush_buf is None:
            self._flush_buf = torch.empty(self.flush_bytes(), dtype=torch.uint8, device="cuda")
        self._flush_buf.fill_(i & 0xFF)
        torch.cuda.synchronize()

    def wake(self) -> None:
        """Nothing to wake on CUDA: the device's work queue does not sleep."""

    def to_device(self, t):
        """Host input -> device, before the in-process timer starts (inside the parent's window)."""
        import torch

        with torch._C._DisableTorchDispatch(), torch._C.DisableTorchFunction():
            return _copy_to(t, "cuda")

    def to_host(self, t):
        """Device output -> host after a device-wide synchronise, with the candidate's Python
        hooks (dispatch and torch-function modes) switched off for the copy; the parent then
        reads the host copy from this process's memory while it is stopped."""
        import torch

        torch.cuda.synchronize()
        if t.device.type != "cuda":
            return t
        with torch._C._DisableTorchDispatch(), torch._C.DisableTorchFunction():
            host = _copy_to(t, "cpu")
        torch.cuda.synchronize()
        return host

    def profiler_activities(self) -> list:
        from torch.profiler import ProfilerActivity

        return [ProfilerActivity.CPU, ProfilerActivity.CUDA]

    def mark_current_stream(self) -> None:
        """Launch the marker kernel on torch's current stream (inside the profiled call)."""
        import torch

        torch.cuda._sleep(0)

    def evidence(self, events: list[dict], ext_namespace: str) -> Evidence:
        return judge_evidence(events, ext_namespace)


def is_marker(name: str) -> bool:
    return name.startswith(("at::cuda::", "void at::cuda::")) and MARKER_KERNEL in name


def own_kernels(events: list[dict]) -> list[dict]:
    """GPU events of the candidate's own kernels: not PyTorch's, not copies, not the marker."""
    return [e for e in events if e.get("device") == "cuda" and not e["name"].startswith(TORCH_KERNEL_PREFIXES)]


def stream_problem(events: list[dict]) -> str | None:
    """Why the candidate's kernels ran off torch's current stream, or None.

    `events`: the traced call's events as the runner child records them: {"name", "device"
    ("cuda" for GPU activity), "stream" (the profiler's stream id of a GPU event, or None)}.
    The current stream is the one the runner's marker kernels ran on. Without a marker (or
    without stream ids) nothing can be decided and nothing is claimed.
    """
    current = {e.get("stream") for e in events if e.get("device") == "cuda" and is_marker(e["name"])} - {None}
    if not current:
        return None
    others = sorted({e["stream"] for e in own_kernels(events) if e.get("stream") is not None} - current)
    if not others:
        return None
    names = sorted({e["name"] for e in own_kernels(events) if e.get("stream") in others})
    return (f"launched its kernels on another stream ({', '.join(map(str, others))}), not the current stream "
            f"({', '.join(map(str, sorted(current)))}): the caller's stream order breaks and timers on the "
            f"current stream miss the work ({_short(names)})")


def judge_evidence(events: list[dict], ext_namespace: str) -> Evidence:
    """Did the candidate's own kernels do the traced call's work, on the current stream?

    Pure: the decision behind CudaDevice.evidence, on the event dicts described in
    stream_problem (op names from the dispatch trace come with device "cpu")."""
    ours = sorted({e["name"] for e in events if e["name"].startswith(ext_namespace + "::")})
    if not ours:
        return Evidence(False, f"no op of the extension ({ext_namespace}::*) was dispatched: the API returned "
                               f"without calling the candidate's compiled code")
    kernels = sorted({e["name"] for e in own_kernels(events)})
    if not kernels:
        torch_work = [e["name"] for e in events if e.get("device") == "cuda" and not is_marker(e["name"])]
        copies = sorted({n for n in torch_work if n.startswith(("Memcpy", "Memset"))})
        n_kernels = len(torch_work) - sum(n.startswith(("Memcpy", "Memset")) for n in torch_work)
        parts = ([f"{n_kernels} PyTorch kernel(s)"] if n_kernels else []) + copies
        seen = f"the GPU ran only {', '.join(parts)}" if parts else "nothing ran on the GPU"
        return Evidence(False, f"the extension's op ({', '.join(ours)}) ran but launched no kernel of its own ({seen})")
    problem = stream_problem(events)
    if problem:
        return Evidence(False, problem, "other_stream")
    return Evidence(True, f"launched {_short(kernels)}")


def _short(names: list[str], keep: int = 3) -> str:
    """A few names, each cut to 80 characters, and how many more there were."""
    cut = [n if len(n) <= 80 else n[:77] + "..." for n in names[:keep]]
    more = f" and {len(names) - keep} more" if len(names) > keep else ""
    return ", ".join(cut) + more
