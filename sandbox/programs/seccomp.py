"""A system-call filter for the candidate's child: what a kernel never needs is refused.

Installed by the runner child itself, after torch is imported and before the candidate's
package is, with SECCOMP_FILTER_FLAG_TSYNC so every thread of the process gets it; a filter
can never be removed, only made stricter, so the candidate cannot undo it.

  * starting a process (fork, vfork, clone without CLONE_THREAD, setsid, setpgid): the
    process is killed at once (SIGSYS). That is how the parent learns that the candidate
    tried (harness/execute/runner.py: "started processes of its own"); threads are allowed.
  * clone3 answers ENOSYS: its flags sit behind a pointer the filter cannot read, and glibc
    falls back to clone (whose flags it can read) for threads.
  * reading or steering other processes, or hiding from the parent: ptrace,
    process_vm_readv/writev, userfaultfd, perf_event_open, bpf, pidfd_getfd,
    pidfd_send_signal, kcmp, unshare, setns, mount, execve/execveat, tkill, kill or tgkill
    aimed at another process, prctl(PR_SET_DUMPABLE) (which would refuse the parent's reads
    of its memory): EPERM.
  * changing the cores or the scheduling it was given (sched_setaffinity, sched_setscheduler,
    sched_setattr): EPERM. A CPU timing lane owns its cores; a candidate that widened its
    set would time against a reference held to fewer cores, and take cores from other lanes.

Pure ctypes; x86_64 and aarch64. Elsewhere `install` says why it did nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JSET_K = 0x45
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
EPERM, ENOSYS = 1, 38
CLONE_THREAD = 0x00010000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1
#: offsets into struct seccomp_data: nr, arch, then args[6] as u64 (low word first on little endian)
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16

#: Per architecture: the audit arch, the seccomp(2) number and the numbers the policy names.
ARCHES: dict[str, dict] = {
    "x86_64": {
        "audit": 0xC000003E, "seccomp": 317, "x32_bit": 0x40000000,
        "kill": {"fork": 57, "vfork": 58, "setsid": 112, "setpgid": 109},
        "clone": 56, "clone3": 435, "kill_call": 62, "tgkill": 234, "prctl": 157,
        "eperm": {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "userfaultfd": 323,
                  "perf_event_open": 298, "bpf": 321, "pidfd_getfd": 438, "pidfd_send_signal": 424,
                  "kcmp": 312, "unshare": 272, "setns": 308, "mount": 165, "execve": 59, "execveat": 322,
                  "tkill": 200, "sched_setaffinity": 203, "sched_setscheduler": 144, "sched_setattr": 314},
    },
    "aarch64": {
        "audit": 0xC00000B7, "seccomp": 277, "x32_bit": None,
        "kill": {"setsid": 157, "setpgid": 154},
        "clone": 220, "clone3": 435, "kill_call": 129, "tgkill": 131, "prctl": 167,
        "eperm": {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "userfaultfd": 282,
                  "perf_event_open": 241, "bpf": 280, "pidfd_getfd": 438, "pidfd_send_signal": 424,
                  "kcmp": 272, "unshare": 97, "setns": 268, "mount": 40, "execve": 221, "execveat": 281,
                  "tkill": 130, "sched_setaffinity": 122, "sched_setscheduler": 119, "sched_setattr": 274},
    },
}
#: What the process-creation family is called in reports (the parent's reason quotes it).
KILLED_FOR = "fork, vfork, clone (other than a thread), setsid, setpgid"


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return code, jt, jf, k & 0xFFFFFFFF


def _block(nr: int, body: list) -> list:
    """`if nr == NR: body` (the body ends in returns, or falls through to what follows)."""
    return [_ins(BPF_JEQ_K, nr, 0, len(body)), *body]


def program(arch: str, own_pid: int) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; pure, so tests can read it.

    Every test jumps only over its own few instructions, so no jump comes near the
    255-instruction limit of classic BPF."""
    a = ARCHES[arch]
    eperm, kill = RET_ERRNO | EPERM, RET_KILL_PROCESS
    p = [_ins(BPF_LD_W_ABS, OFF_ARCH), _ins(BPF_JEQ_K, a["audit"], 1, 0), _ins(BPF_RET_K, kill),
         _ins(BPF_LD_W_ABS, OFF_NR)]
    if a["x32_bit"]:
        p += [_ins(BPF_JGE_K, a["x32_bit"], 0, 1), _ins(BPF_RET_K, kill)]
    for nr in a["kill"].values():
        p += [_ins(BPF_JEQ_K, nr, 0, 1), _ins(BPF_RET_K, kill)]
    for nr in a["eperm"].values():
        p += [_ins(BPF_JEQ_K, nr, 0, 1), _ins(BPF_RET_K, eperm)]
    p += [_ins(BPF_JEQ_K, a["clone3"], 0, 1), _ins(BPF_RET_K, RET_ERRNO | ENOSYS)]
    # clone: a thread (CLONE_THREAD) is allowed, anything else starts a process.
    p += _block(a["clone"], [_ins(BPF_LD_W_ABS, OFF_ARG0), _ins(BPF_JSET_K, CLONE_THREAD, 0, 1),
                             _ins(BPF_RET_K, RET_ALLOW), _ins(BPF_RET_K, kill)])
    # kill(pid, sig) and tgkill(tgid, tid, sig): only this process (or its own group, pid 0).
    p += _block(a["kill_call"], [_ins(BPF_LD_W_ABS, OFF_ARG0), _ins(BPF_JEQ_K, own_pid, 1, 0),
                                 _ins(BPF_JEQ_K, 0, 0, 1), _ins(BPF_RET_K, RET_ALLOW), _ins(BPF_RET_K, eperm)])
    p += _block(a["tgkill"], [_ins(BPF_LD_W_ABS, OFF_ARG0), _ins(BPF_JEQ_K, own_pid, 0, 1),
                              _ins(BPF_RET_K, RET_ALLOW), _ins(BPF_RET_K, eperm)])
    # prctl(PR_SET_DUMPABLE, ...) would stop the parent reading this process's memory; other
    # prctl options fall through to the final allow.
    p += _block(a["prctl"], [_ins(BPF_LD_W_ABS, OFF_ARG0), _ins(BPF_JEQ_K, PR_SET_DUMPABLE, 0, 1),
                             _ins(BPF_RET_K, eperm)])
    p.append(_ins(BPF_RET_K, RET_ALLOW))
    return p


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(own_pid: int | None = None) -> str:
    """Install the filter on every thread of this process. Returns a line for the report:
    what is in force, or why nothing is (an architecture without a table, an old kernel)."""
    arch = platform.machine()
    if arch not in ARCHES:
        return f"no system-call filter: no table for {arch}"
    prog = program(arch, os.getpid() if own_pid is None else own_pid)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"no system-call filter: PR_SET_NO_NEW_PRIVS failed ({os.strerror(ctypes.get_errno())})"
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(ARCHES[arch]["seccomp"]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                      ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(fprog))
    if rc != 0:
        return f"no system-call filter: seccomp() failed ({os.strerror(ctypes.get_errno())})"
    return (f"system calls: {KILLED_FOR} kill the process (SIGSYS); ptrace, process_vm_*, userfaultfd, "
            f"execve, signals to other processes, PR_SET_DUMPABLE and changes of its cores or scheduling "
            f"are refused")


__all__ = ["ARCHES", "KILLED_FOR", "install", "program"]
