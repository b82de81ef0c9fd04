"""The front door for untrusted commands: pick the backend asked for and run through it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sandbox.backends import resolve_backend
from sandbox.exec import ExecResult
from sandbox.limits import Limits


def run_sandboxed(
    cmd: list[str],
    *,
    cwd: Path,
    limits: Limits = Limits(),
    backend: str = "auto",
    env_extra: dict[str, str] | None = None,
    ro_paths: tuple[Path, ...] = (),
    gpu: bool = False,
    network: bool = False,
    stdin_data: bytes | None = None,
    pass_fds: tuple[int, ...] = (),
    on_start: Callable[[int], None] | None = None,
) -> ExecResult:
    """Run untrusted `cmd` with `cwd` as the only writable place (where the backend can
    enforce it). `ro_paths` are extra read-only binds (toolchain, venv) for stronger
    backends. The chosen backend's name is in the result."""
    impl = resolve_backend(backend, need_fds=bool(pass_fds))
    return impl.run(cmd, cwd=cwd, limits=limits, env_extra=env_extra, ro_paths=ro_paths,
                    gpu=gpu, network=network, stdin_data=stdin_data, pass_fds=pass_fds, on_start=on_start)


__all__ = ["run_sandboxed"]
