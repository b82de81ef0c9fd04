"""The weakest backend: a child process in its own session with rlimits and a
scrubbed environment. It cannot stop reads of world-readable files, writes to
writable places outside the workspace, or network use (see capabilities.LOCAL)."""

from __future__ import annotations

from pathlib import Path

from sandbox.exec import ExecResult, run_local
from sandbox.limits import Limits, scrubbed_env


class LocalBackend:
    name = "local"

    def available(self) -> bool:
        return True

    def contains(self, escape: str) -> str | None:
        from sandbox.backends.capabilities import contains

        return contains(self.name, escape)

    def run(self, cmd: list[str], *, cwd: Path, limits: Limits, env_extra: dict[str, str] | None = None,
            ro_paths: tuple[Path, ...] = (), gpu: bool = False, network: bool = False,
            stdin_data: bytes | None = None, pass_fds: tuple[int, ...] = (), on_start=None) -> ExecResult:
        env = scrubbed_env(str(cwd), env_extra)
        guards = [
            f"environment: allowlist only, {len(env)} variables (no *KEY*/*TOKEN*/*SECRET* names); HOME is the workspace",
            "filesystem: NOT isolated (same uid; the workspace is only the working directory)",
            "network: NOT isolated",
        ]
        return run_local(cmd, cwd=cwd, limits=limits, env=env, stdin_data=stdin_data,
                         pass_fds=pass_fds, backend_name=self.name, guards=guards, on_start=on_start)
