"""Container backend: docker or podman through the CLI, image built from Dockerfile.cuda.

The workspace is mounted read-write at /work, extra read-only paths at their host
path (or under /ro/ when that would fall inside /work), no network, memory and pids
limits from `Limits`, `--gpus all` (docker) or the CDI device (podman) for GPU work.
`container_command` is pure so its output is unit-tested without an engine.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from sandbox.exec import ExecResult, run_local
from sandbox.limits import Limits, scrubbed_env

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "kernelgrade-cuda"
WORKDIR = "/work"
SANDBOX_HOME = "/home/sandbox"
# Host paths that mean nothing inside the image; it sets its own.
_HOST_ONLY_ENV = ("PATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CUDA_HOME", "CUDA_PATH")


def image_name() -> str:
    return os.environ.get("KERNELGRADE_IMAGE", DEFAULT_IMAGE)


def _path_map(cwd: Path, ro_paths: tuple[Path, ...] | list[Path]) -> list[tuple[str, str, str]]:
    """(host, container, mode) for the workspace and each read-only path."""
    mounts = [(str(Path(cwd).absolute()), WORKDIR, "rw")]
    for i, path in enumerate(dict.fromkeys(str(Path(p).absolute()) for p in ro_paths)):
        inside = path
        if inside == WORKDIR or inside.startswith(WORKDIR + "/"):
            inside = f"/ro/{i}-{Path(path).name}"
        mounts.append((path, inside, "ro"))
    return mounts


def _translate(arg: str, mounts: list[tuple[str, str, str]]) -> str:
    """Rewrite host paths in one argument to their container paths (longest prefix first)."""
    for host, inside, _ in sorted(mounts, key=lambda m: len(m[0]), reverse=True):
        if arg == host or arg.startswith(host + "/"):
            return inside + arg[len(host):]
        for sep in ("=", ":"):  # -Ipath=..., -o=path, PYTHONPATH-like lists stay simple
            head, found, tail = arg.partition(sep)
            if found and (tail == host or tail.startswith(host + "/")):
                return head + sep + inside + tail[len(host):]
    return arg


def container_command(
    cmd: list[str],
    *,
    engine: str,
    image: str,
    cwd: Path,
    limits: Limits,
    env: dict[str, str],
    ro_paths: tuple[Path, ...] | list[Path] = (),
    gpu: bool = False,
    network: bool = False,
    name: str = "kernelgrade",
    user: str | None = None,
) -> list[str]:
    """The engine command line that runs `cmd` in `image` with `cwd` mounted at /work.

    `engine` is a path or name of docker or podman; podman gets `--runtime runc` and
    explicit ulimits (crun and the default ulimits are refused on some hosts). `user`
    ("uid:gid") makes files written to the workspace belong to the caller."""
    podman = Path(engine).name.startswith("podman")
    args = [engine]
    if podman:
        args += ["--runtime", "runc"]
    args += ["run", "--rm", "--name", name, "--init", "--read-only",
             "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if user:
        args += ["--user", user]
    if not network:
        args += ["--network", "none"]
    if limits.memory_mb:
        args += ["--memory", f"{int(limits.memory_mb)}m", "--memory-swap", f"{int(limits.memory_mb)}m"]
    args += ["--pids-limit", str(int(limits.nproc))]
    args += ["--ulimit", f"cpu={int(limits.cpu_s)}:{int(limits.cpu_s)}",
             "--ulimit", f"fsize={int(limits.file_mb) * 1024 * 1024}:{int(limits.file_mb) * 1024 * 1024}",
             "--ulimit", "core=0:0", "--ulimit", "nofile=1024:1024"]
    if podman:
        args += ["--ulimit", f"nproc={int(limits.nproc)}:{int(limits.nproc)}"]
    args += ["--tmpfs", f"/tmp:rw,size={int(limits.file_mb)}m", "--tmpfs", f"{SANDBOX_HOME}:rw,size=64m"]
    if gpu:
        args += ["--device", "nvidia.com/gpu=all"] if podman else ["--gpus", "all"]
    mounts = _path_map(cwd, ro_paths)
    for host, inside, mode in mounts:
        args += ["-v", f"{host}:{inside}:{mode}"]
    args += ["-w", WORKDIR]
    for key in sorted(env):
        if key not in _HOST_ONLY_ENV:
            args += ["-e", f"{key}={_translate(env[key], mounts)}"]
    args += ["-e", f"HOME={SANDBOX_HOME}", "-e", "TMPDIR=/tmp"]
    inner = list(cmd)
    if inner and inner[0] == sys.executable:
        inner[0] = "python3"  # the image's interpreter, not the host venv's
    inner = [_translate(a, mounts) for a in inner]
    return [*args, image, *inner]


def _engines() -> list[str]:
    if forced := os.environ.get("KERNELGRADE_CONTAINER_ENGINE"):
        return [forced]
    return [exe for name in ("docker", "podman") if (exe := shutil.which(name))]


@functools.lru_cache(maxsize=4)
def _find_engine(image: str) -> tuple[str | None, str]:
    """The first engine that answers and has `image`, or (None, why not)."""
    reasons = []
    for engine in _engines():
        probe = [engine, "image", "inspect", image]
        if Path(engine).name.startswith("podman"):
            probe = [engine, "--runtime", "runc", "image", "exists", image]
        try:
            proc = subprocess.run(probe, capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{engine}: {exc}")
            continue
        if proc.returncode == 0:
            return engine, ""
        reasons.append(f"{engine}: {(proc.stderr or proc.stdout).strip()[:160] or f'no image {image}'}")
    if not reasons:
        return None, "neither docker nor podman is on PATH"
    return None, "; ".join(reasons)


def unavailable_reason() -> str | None:
    engine, why = _find_engine(image_name())
    return None if engine else why


class ContainerBackend:
    name = "container"
    passes_fds = False
    """docker cannot hand inherited descriptors to the container; auto skips this backend
    for commands that need them."""

    def available(self) -> bool:
        return _find_engine(image_name())[0] is not None

    def contains(self, escape: str) -> str | None:
        from sandbox.backends.capabilities import contains

        return contains(self.name, escape)

    def run(self, cmd: list[str], *, cwd: Path, limits: Limits, env_extra: dict[str, str] | None = None,
            ro_paths: tuple[Path, ...] = (), gpu: bool = False, network: bool = False,
            stdin_data: bytes | None = None, pass_fds: tuple[int, ...] = (), on_start=None) -> ExecResult:
        image = image_name()
        engine, why = _find_engine(image)
        if engine is None:
            raise RuntimeError(f"container backend unavailable: {why}")
        if pass_fds:
            # docker cannot hand an inherited fd to the container process; failing here
            # is clearer than a child that dies writing to a closed descriptor.
            raise RuntimeError(f"container backend cannot pass file descriptors {pass_fds} into the "
                               "container; exchange results through files in the workspace")
        name = f"kernelgrade-{uuid.uuid4().hex[:12]}"
        env = scrubbed_env(SANDBOX_HOME, env_extra)
        full = container_command(cmd, engine=engine, image=image, cwd=cwd, limits=limits, env=env,
                                 ro_paths=ro_paths, gpu=gpu, network=network, name=name,
                                 user=f"{os.getuid()}:{os.getgid()}")
        if stdin_data is not None:
            full.insert(full.index("run") + 1, "-i")
        guards = [
            f"engine: {Path(engine).name}, image {image}, container {name}",
            f"environment: allowlist only, {len(env)} variables passed with -e (no *KEY*/*TOKEN*/*SECRET* names)",
            "network: shared (network=True)" if network else "network: none (--network none)",
            f"memory: cgroup --memory {limits.memory_mb} MB" if limits.memory_mb else "memory: no cgroup limit",
            f"processes: --pids-limit {limits.nproc}",
            f"filesystem: read-only root; workspace {cwd} at {WORKDIR} read-write; tmpfs /tmp and HOME",
            "privileges: all capabilities dropped, no-new-privileges",
            "exit status: a command killed by signal N reports 128+N (the engine cannot say which)",
        ]
        # The engine client runs on the host: its rlimits would bind the engine, not the
        # container, so the limits go in as flags instead.
        result = run_local(full, cwd=cwd, limits=limits, env=dict(os.environ), stdin_data=stdin_data,
                           backend_name=self.name, apply_limits=False, use_cgroup=False, guards=guards,
                           on_start=on_start)
        if result.timed_out or result.returncode is None:
            # Killing the client does not stop a docker container; stop it by name.
            for sub in (["kill", name], ["rm", "-f", name]):
                try:
                    subprocess.run([engine, *sub], capture_output=True, timeout=30)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            result.notes.append(f"container {name} killed and removed")
        elif result.returncode == 137 and limits.memory_mb:
            # --rm leaves nothing to inspect; 137 is SIGKILL, which here is almost always the OOM killer.
            result.notes.append(f"exit 137: killed by SIGKILL, likely the --memory {limits.memory_mb}m cgroup limit")
        return result


__all__ = ["ContainerBackend", "DEFAULT_IMAGE", "container_command", "image_name", "unavailable_reason"]
