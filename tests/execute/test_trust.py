"""The trusted side's own evidence (docs/validation.md, "Threat model"), each piece on its own:
the parent's clock cross-check (pure), the library-import rules (real gcc-built libraries),
reading a stopped process's memory, the system-call filter (a real child that forks), and
the layered inputs (a look ahead, or an answer from the seed, is wrong in every row)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness.execute import memory
from harness.execute.inputs import make_layers
from harness.execute.library_imports import read_library
from harness.execute.timing import cross_check
from harness.inputs.reference import load_reference_module, op_reference_path


def _times(n: int, call_ns: int, overhead_ns: int, clock_share: float = 1.0):
    """(cand_parent, cand_inproc, ref_parent, ref_inproc): a reference call of 200 us, the
    harness's overhead around every call, a little jitter; the candidate's own clock sees
    `clock_share` of its call."""
    jit = [(k * 7919) % 5000 for k in range(n)]  # up to 5 us, deterministic
    ref_in = [200_000 + j for j in jit]
    ref_par = [t + overhead_ns + j for t, j in zip(ref_in, jit)]
    cand_par = [call_ns + overhead_ns + j for j in jit]
    cand_in = [int(call_ns * clock_share) for _ in jit]
    return cand_par, cand_in, ref_par, ref_in


def test_cross_check_accepts_an_honest_clock() -> None:
    check = cross_check(*_times(40, call_ns=500_000, overhead_ns=80_000))
    assert check.problem is None, check.problem
    assert abs(check.metrics["clock_excess_us"]) < 10


def test_cross_check_finds_a_clock_that_runs_slow() -> None:
    """A child's clock that sees a third of each call: two thirds missing, far beyond the tolerance."""
    cand_par, cand_in, ref_par, ref_in = _times(40, call_ns=3_000_000, overhead_ns=80_000, clock_share=1 / 3)
    check = cross_check(cand_par, cand_in, ref_par, ref_in)
    assert check.problem is not None and check.problem.startswith("timing not confirmed from outside")
    # The figure the speedup uses is floored by the outside time less the reference's overhead.
    floored = [max(t, pc - (pr - tr) - check.floor_ns) for pc, t, pr, tr in zip(cand_par, cand_in, ref_par, ref_in)]
    assert min(floored) > 2_900_000


def test_cross_check_finds_a_clock_that_runs_past_the_outside_one() -> None:
    cand_par, cand_in, ref_par, ref_in = _times(40, call_ns=500_000, overhead_ns=80_000, clock_share=2.0)
    check = cross_check(cand_par, cand_in, ref_par, ref_in)
    assert check.problem is not None and "more than" in check.problem


def _loaded(n: int, call_ns: int, clock_share: float = 1.0):
    """A loaded machine: each child's overhead around a call (8 ms) moves by up to 10 ms, independently."""
    import random

    rng = random.Random(7)
    ref_in = [200_000 + rng.randrange(50_000) for _ in range(n)]
    ref_par = [t + 8_000_000 + rng.randrange(10_000_000) for t in ref_in]
    cand_in = [int(call_ns * clock_share)] * n
    cand_par = [call_ns + 8_000_000 + rng.randrange(10_000_000) for _ in range(n)]
    return cand_par, cand_in, ref_par, ref_in


def test_cross_check_tolerates_a_loaded_machine_and_still_sees_a_slow_clock() -> None:
    for seed_shift in range(20):
        cand_par, cand_in, ref_par, ref_in = _loaded(40 + seed_shift, call_ns=400_000)
        assert cross_check(cand_par, cand_in, ref_par, ref_in).problem is None
    cand_par, cand_in, ref_par, ref_in = _loaded(40, call_ns=60_000_000, clock_share=1 / 3)
    assert cross_check(cand_par, cand_in, ref_par, ref_in).problem is not None


def _shared_library(tmp_path: Path, name: str, body: str) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: scripts/setup.sh's system packages include gcc")
    src = tmp_path / f"{name}.c"
    src.write_text(textwrap.dedent(body))
    out = tmp_path / f"{name}.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True, timeout=120)
    return out


def test_library_imports_flag_what_a_kernel_never_needs(tmp_path: Path) -> None:
    """Read from the file, never from the process: fork and mprotect are errors, a plain kernel is clean."""
    plain = _shared_library(tmp_path, "plain", """
        void scale(float *x, int n, float a) { for (int i = 0; i < n; ++i) x[i] *= a; }
    """)
    sneaky = _shared_library(tmp_path, "sneaky", """
        #include <unistd.h>
        #include <sys/mman.h>
        int later(void *p) { if (fork() == 0) _exit(0); return mprotect(p, 4096, PROT_NONE); }
    """)
    clean = read_library([plain], ext_namespace="_ext", replaced=["aten::mul"])
    assert clean.problems == [] and clean.imports is not None
    bad = read_library([sneaky], ext_namespace="_ext", replaced=["aten::mul"])
    kinds = {k for k, _ in bad.problems}
    text = " ".join(m for _, m in bad.problems)
    assert kinds == {"library"} and "fork" in text and "mprotect" in text


def test_the_parent_reads_a_stopped_child_memory(tmp_path: Path) -> None:
    """What the parent compares is the bytes in the child's memory while it cannot run."""
    code = ("import ctypes, os, signal, sys\n"
            "buf = ctypes.create_string_buffer(b'kernelgrade-bytes', 32)\n"
            "print(ctypes.addressof(buf), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGSTOP)\n"
            "buf.value = b'changed'\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        addr = int(proc.stdout.readline())
        assert memory.wait_stopped(proc.pid, 10) is True
        assert bytes(memory.read_memory(proc.pid, addr, 17)) == b"kernelgrade-bytes"
        with pytest.raises(memory.Unreadable):
            memory.read_memory(proc.pid, 8, 16)  # page zero is never mapped
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _filtered_child(code: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `code` (which installs the filter and prints its line first); skip where no filter
    can be installed on this machine."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    lines = out.stdout.splitlines()
    if lines and lines[0].startswith("no system-call filter"):
        pytest.skip(lines[0])
    return out, lines


def test_a_filtered_child_that_forks_is_killed() -> None:
    """The filter is installed before the candidate's code, and a process start ends the child."""
    code = ("import os, sys\n"
            "from sandbox.programs import seccomp\n"
            "print(seccomp.install(), flush=True)\n"
            "import threading; t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
            "print('thread ok', flush=True)\n"
            "os.fork()\n"
            "print('forked', flush=True)\n")
    out, lines = _filtered_child(code)
    assert "thread ok" in lines and "forked" not in out.stdout
    assert out.returncode == -signal.SIGSYS, (out.returncode, out.stderr[-500:])


def test_a_filtered_child_cannot_widen_its_cores() -> None:
    """The cores a timing lane gives the child are the cores it keeps: widening them is refused."""
    code = ("import os, sys\n"
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
            "from sandbox.programs import seccomp\n"
            "print(seccomp.install(), flush=True)\n"
            "try:\n"
            "    os.sched_setaffinity(0, range(os.cpu_count()))\n"
            "    print('widened', flush=True)\n"
            "except PermissionError:\n"
            "    print('refused', flush=True)\n"
            "print(len(os.sched_getaffinity(0)), flush=True)\n")
    out, lines = _filtered_child(code)
    assert lines[1:] == ["refused", "1"], (out.stdout, out.stderr[-500:])


def test_input_layers_differ_in_every_row() -> None:
    """x0 (from the seed), x1 (the decoy staged ahead) and x2 (the real input) differ in every row
    of every floating input, so an answer made from the seed or from an early look is wrong everywhere."""
    ref = load_reference_module(op_reference_path("rmsnorm"))
    layers = make_layers(ref, [6, 64], "float32", base_seed=1234, index=0)
    x0, x1, x2 = (layers.layers[k][0] for k in ("x0", "x1", "x2"))
    for a, b in ((x0, x1), (x1, x2), (x0, x2)):
        assert bool((a != b).any(dim=-1).all())
    again = make_layers(ref, [6, 64], "float32", base_seed=1234, index=0)
    assert torch.equal(again.real[0], x2)  # the same secret seed gives the same inputs


def test_own_work_compares_blocked_calls_less_the_mode_s_cost() -> None:
    """Speed that exists only while PyTorch can compute is not the candidate's own; an honest
    candidate pays the blocking mode as the reference does, and is not flagged for it."""
    from harness.execute.timing import own_work_problem

    us = 1_000
    ref, ref_blocked = [300 * us] * 6, [420 * us] * 6  # the mode costs the reference 120 us
    honest, honest_blocked = [250 * us] * 6, [300 * us] * 6  # fewer ops: the mode costs it less
    assert own_work_problem(honest, honest_blocked, ref, ref_blocked)[0] is None
    # PyTorch's speed unwatched (250 us), its own slow kernel once PyTorch cannot compute (5 ms).
    problem, metrics = own_work_problem(honest, [5_000 * us] * 6, ref, ref_blocked)
    assert problem and problem.startswith("computes with PyTorch when it is not watched")
    assert metrics["blocked_mode_cost_us"] == 120 and metrics["blocked_excess_us"] > metrics["blocked_slack_us"]
    # Within the tolerance (60 us + 30% of the call): noise, not a finding.
    assert own_work_problem(honest, [(250 + 120 + 100) * us] * 6, ref, ref_blocked)[0] is None
    # A busy machine: most blocked calls of an honest candidate delayed by milliseconds, and
    # the reference's calls too. Noise only adds time, so the fastest of each decides.
    busy = [4_000 * us, 300 * us, 3_500 * us, 6_000 * us, 2_800 * us, 5_100 * us]
    noisy_ref_blocked = [1_200_000 * us, 420 * us, 2_000 * us, 430 * us, 9_000 * us, 3_000 * us]
    assert own_work_problem(honest, busy, ref + [12_000 * us], noisy_ref_blocked)[0] is None
    # ...while slow on every blocked call stays slow on its fastest.
    assert own_work_problem(honest, [5_000 * us + d for d in busy], ref, noisy_ref_blocked)[0]


def test_the_compute_block_refuses_pytorch_compute_but_not_allocation() -> None:
    """The child's compute block, the same rule as the judge's: the candidate's own ops and ops
    that allocate, view, copy or fill go through; anything else PyTorch computes raises."""
    from sandbox.programs.serve import ComputeBlock

    x = torch.randn(4, 8)
    with ComputeBlock("_my_ext_cpu_abc"):
        y = torch.empty_like(x)
        y.copy_(x)
        z = x.view(8, 4).contiguous().to(torch.float64)
        with pytest.raises(RuntimeError, match="PyTorch's compute is unavailable in this call: aten::"):
            x.pow(2).mean(-1)
    assert torch.equal(y, x) and z.shape == (8, 4)
    with ComputeBlock(None):  # the reference's side: passes everything through
        assert torch.allclose(x.pow(2).mean(-1), (x * x).mean(-1))
