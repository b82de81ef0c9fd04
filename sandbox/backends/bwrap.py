"""bubblewrap backend: a fresh mount, pid, network, ipc, uts and user namespace with a
read-only system, tmpfs HOME and /tmp, and the workspace as the only writable place.

The process lifecycle (rlimits, pids cgroup, wall-clock kill, bounded output) is
sandbox.exec.run_local's; this module only builds the bwrap command line.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sandbox.exec import ExecResult, run_local
from sandbox.limits import Limits, scrubbed_env

log = logging.getLogger(__name__)

#: HOME inside the sandbox: an empty tmpfs, never the user's home.
SANDBOX_HOME = "/home/sandbox"
HOME_TMPFS_MB = 64

# Top-level directories that are symlinks into /usr on merged-/usr systems.
_ROOT_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# The /etc files a compiler and Python need; not the whole /etc (no shadow, no ssh keys).
_ETC_FILES = (
    "passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
    "alternatives", "localtime", "timezone", "os-release", "debian_version", "mime.types",
    "ssl/certs", "ca-certificates.conf", "nvidia", "OpenCL", "vulkan",
)


def _cuda_dirs() -> list[Path]:
    found: list[Path] = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if value := os.environ.get(var):
            found.append(Path(value))
    if nvcc := shutil.which("nvcc"):
        found.append(Path(nvcc).resolve().parent.parent)
    found += [Path(p) for p in sorted(glob.glob("/usr/local/cuda*")) + sorted(glob.glob("/opt/cuda*"))]
    return found


def _site_dirs() -> list[Path]:
    """site-packages on sys.path outside the prefixes: a venv that reaches another venv's
    packages through a .pth (scripts/setup.sh does this where torch lives in one)."""
    return [Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]


def default_ro_paths() -> list[Path]:
    """Read-only binds every command gets: the Python environment, CUDA toolkit, kernelgrade."""
    return [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), *_site_dirs(), *_cuda_dirs()]


def gpu_device_nodes() -> list[str]:
    return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri"))


def bwrap_command(
    cmd: list[str],
    *,
    cwd: Path,
    ro_paths: tuple[Path, ...] | list[Path] = (),
    gpu: bool = False,
    network: bool = False,
    tmp_mb: int = 1024,
    bwrap: str = "bwrap",
    disable_userns: bool = True,
) -> list[str]:
    """The bwrap command line that runs `cmd` with `cwd` as the only writable directory.

    Paths keep their host names inside, so commands and paths passed by callers work as is.
    `disable_userns` (bwrap >= 0.8) stops the command from making nested user namespaces."""
    args = [bwrap, "--unshare-all"]
    if disable_userns:
        args += ["--unshare-user", "--disable-userns"]
    if network:
        args.append("--share-net")
    args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in _ROOT_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for name in _ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    if network:
        for name in ("resolv.conf", "hosts"):
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(int(tmp_mb) * 1024 * 1024), "--tmpfs", "/tmp"]
    args += ["--size", str(HOME_TMPFS_MB * 1024 * 1024), "--tmpfs", SANDBOX_HOME]
    workspace = Path(cwd).absolute()
    outer: list[str] = []
    inner: list[str] = []  # read-only paths inside the workspace: bound over it, so after it
    wanted = list(dict.fromkeys(Path(p).absolute() for p in ro_paths))
    links: set[Path] = set()
    for path in wanted:
        key = str(path)
        if key == "/usr" or key.startswith("/usr/"):
            continue  # already read-only
        if not path.exists():
            log.debug("bwrap: read-only path %s does not exist; not bound", path)
            continue
        (inner if workspace in path.parents else outer).extend(_ro_bind(path, [*wanted, workspace], links))
    args += outer
    if gpu:
        for node in gpu_device_nodes():
            args += ["--dev-bind", node, node]
        # The CUDA driver reads PCI topology from sysfs.
        args += ["--ro-bind-try", "/sys", "/sys"]
    args += ["--bind", str(workspace), str(workspace), *inner, "--chdir", str(workspace)]
    return [*args, "--", *cmd]


def _ro_bind(path: Path, bound: list[Path], links: set[Path]) -> list[str]:
    """Bind `path` read-only under its own name. A path through a symbolic link (a venv
    reached by a link, say) is bound at its real place and the link is recreated, since
    bwrap cannot mount onto a link. `links` holds the links made so far (each once)."""
    real = path.resolve()
    if real == path:
        return ["--ro-bind", str(path), str(path)]
    args = ["--ro-bind", str(real), str(real)]
    link = next((c for c in [*reversed(path.parents), path] if c.is_symlink()), None)
    brought = link is not None and any(b == link.parent or b in link.parent.parents for b in bound)
    if link is not None and not brought and link not in links:  # a bound parent already shows the link
        links.add(link)
        args += ["--symlink", os.readlink(link), str(link)]
    return args


def _supports_disable_userns(exe: str) -> bool:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
        major, minor = (int(x) for x in out.split()[-1].split(".")[:2])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return False
    return (major, minor) >= (0, 8)


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str, bool]:
    """(usable, bwrap path or why not, supports --disable-userns)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap not on PATH (scripts/install_system.sh installs bubblewrap)", False
    disable = _supports_disable_userns(exe)
    probe = bwrap_command(["/usr/bin/true"], cwd=Path("/tmp"), bwrap=exe, disable_userns=disable)
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap probe failed: {exc}", False
    if proc.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {proc.stderr.strip()[:200]}", False
    return True, exe, disable


def unavailable_reason() -> str | None:
    ok, detail, _ = _probe()
    return None if ok else detail


# bwrap's pid-1 reports a child killed by signal N as exit code 128+N, which callers
# cannot tell from a real exit code (local gives -N). This wrapper runs inside the
# sandbox, waits for the command and writes the true status to a pipe that the
# command itself never holds (close-on-exec before the exec).
_STATUS_WRAPPER = r"""
import os, sys
fd = int(sys.argv[1])
os.set_inheritable(fd, False)
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        os.write(2, ("kernelgrade sandbox: cannot run %s: %s\n" % (sys.argv[2], exc.strerror)).encode())
        os._exit(127)
while True:
    try:
        status = os.waitpid(pid, 0)[1]
        break
    except InterruptedError:
        continue
if os.WIFSIGNALED(status):
    os.write(fd, b"signal %d\n" % os.WTERMSIG(status))
    os._exit(128 + os.WTERMSIG(status))
code = os.waitstatus_to_exitcode(status)
os.write(fd, b"exit %d\n" % code)
os._exit(code)
"""


def _read_status(fd: int) -> tuple[str, int] | None:
    os.set_blocking(fd, False)
    try:
        kind, _, value = os.read(fd, 256).decode().strip().partition(" ")
        return kind, int(value)
    except (OSError, ValueError):
        return None


class BwrapBackend:
    name = "bwrap"

    def available(self) -> bool:
        return _probe()[0]

    def contains(self, escape: str) -> str | None:
        from sandbox.backends.capabilities import contains

        return contains(self.name, escape)

    def run(self, cmd: list[str], *, cwd: Path, limits: Limits, env_extra: dict[str, str] | None = None,
            ro_paths: tuple[Path, ...] = (), gpu: bool = False, network: bool = False,
            stdin_data: bytes | None = None, pass_fds: tuple[int, ...] = (), on_start=None) -> ExecResult:
        ok, exe, disable_userns = _probe()
        if not ok:
            raise RuntimeError(exe)
        env = scrubbed_env(SANDBOX_HOME, env_extra)
        env["TMPDIR"] = "/tmp"
        status_r, status_w = os.pipe()
        wrapped = [sys.executable, "-I", "-S", "-c", _STATUS_WRAPPER, str(status_w), *cmd]
        full = bwrap_command(wrapped, cwd=cwd, ro_paths=(*ro_paths, *default_ro_paths()), gpu=gpu,
                             network=network, tmp_mb=limits.file_mb, bwrap=exe, disable_userns=disable_userns)
        guards = [
            f"environment: allowlist only, {len(env)} variables (no *KEY*/*TOKEN*/*SECRET* names)",
            "filesystem: new mount namespace; /usr, a few /etc files and the toolchain read-only; "
            f"HOME ({SANDBOX_HOME}) and /tmp are empty tmpfs; only {cwd} is writable",
            "network: shared with the host (network=True)" if network
            else "network: none (own network namespace, loopback only inside)",
            "processes: own pid namespace; killing bwrap kills every process in it",
            "privileges: all capabilities dropped"
            + ("; no nested user namespaces" if disable_userns else ""),
            f"devices: minimal /dev{' plus GPU nodes ' + ', '.join(gpu_device_nodes()) if gpu else ''}",
        ]
        try:
            result = run_local(full, cwd=cwd, limits=limits, env=env, stdin_data=stdin_data,
                               pass_fds=(*pass_fds, status_w), backend_name=self.name, guards=guards,
                               on_start=on_start)
        finally:
            os.close(status_w)
        try:
            status = _read_status(status_r)
        finally:
            os.close(status_r)
        if status and status[0] == "signal" and not result.timed_out:
            result.returncode = -status[1]
        return result


__all__ = ["BwrapBackend", "bwrap_command", "default_ro_paths", "unavailable_reason"]
