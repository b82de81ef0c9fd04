"""Sandbox backends behind one interface (`--sandbox auto|local|bwrap|container`).

`auto` picks the strongest available backend; the result names the one used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sandbox.errors import SandboxUnavailable
from sandbox.exec import ExecResult
from sandbox.limits import Limits


class Backend(Protocol):
    name: str

    def available(self) -> bool: ...

    def contains(self, escape: str) -> str | None:
        """How this backend contains `escape` (capabilities.ESCAPES), or None when it cannot."""
        ...

    def run(self, cmd: list[str], *, cwd: Path, limits: Limits, env_extra: dict[str, str] | None,
            ro_paths: tuple[Path, ...], gpu: bool, network: bool, stdin_data: bytes | None,
            pass_fds: tuple[int, ...], on_start=None) -> ExecResult: ...


def _backends() -> dict[str, Backend]:
    from sandbox.backends.local import LocalBackend

    table: dict[str, Backend] = {"local": LocalBackend()}
    try:
        from sandbox.backends.bwrap import BwrapBackend

        table["bwrap"] = BwrapBackend()
    except ImportError:
        pass
    try:
        from sandbox.backends.container import ContainerBackend

        table["container"] = ContainerBackend()
    except ImportError:
        pass
    return table


#: Strongest first. The container backend is chosen by auto only when its image exists.
AUTO_ORDER = ("container", "bwrap", "local")


def resolve_backend(name: str = "auto", *, need_fds: bool = False) -> Backend:
    """The backend called `name`, or for "auto" the strongest available one. With
    `need_fds` (the command gets pass_fds), auto skips backends that cannot pass them."""
    table = _backends()
    if name == "auto":
        for candidate in AUTO_ORDER:
            impl = table.get(candidate)
            if impl is None or (need_fds and not getattr(impl, "passes_fds", True)):
                continue
            if impl.available():
                return impl
        return table["local"]
    if name not in table:
        raise SandboxUnavailable(f"--sandbox {name}: unknown backend (choose auto, local, bwrap or container)")
    if not table[name].available():
        why = unavailable_reasons().get(name)
        raise SandboxUnavailable(f"--sandbox {name}: not available on this machine" + (f" ({why})" if why else ""))
    return table[name]


def unavailable_reasons() -> dict[str, str | None]:
    """Each known backend -> None when usable here, else why not (for reports and errors)."""
    reasons: dict[str, str | None] = {"local": None}
    for name, module in (("bwrap", "sandbox.backends.bwrap"), ("container", "sandbox.backends.container")):
        try:
            mod = __import__(module, fromlist=["unavailable_reason"])
        except ImportError as exc:
            reasons[name] = f"backend module missing: {exc}"
            continue
        reasons[name] = mod.unavailable_reason()
    return reasons


__all__ = ["AUTO_ORDER", "Backend", "resolve_backend", "unavailable_reasons"]
