"""A kernel-builder project as the other stages see it: build.toml read into typed data.

This reader is deliberately lenient (it reads what is there); *validation* is the
build_toml check's job (harness/checks/build_toml.py, with the kernels parser).
Compile and run use ProjectInfo to know which sources to build for which backend.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

from harness.common.errors import UserError


class KernelInfo(BaseModel):
    name: str
    """The [kernel.<name>] table name."""
    backend: str
    """cuda | cpu | rocm | metal | xpu (edition 6 `language` is mapped onto this)."""
    src: list[str] = Field(default_factory=list)
    depends: list[str] = Field(default_factory=list)
    cuda_capabilities: list[str] | None = None
    """None means the builder's default list."""
    cuda_flags: list[str] = Field(default_factory=list)
    cxx_flags: list[str] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)


class ProjectInfo(BaseModel):
    root: Path
    name: str
    edition: int | None
    """5 for the current format; None when the key is absent (legacy)."""
    backends: list[str] = Field(default_factory=list)
    torch_src: list[str] = Field(default_factory=list)
    """[torch] src: the binding sources (torch-ext/torch_binding.cpp, ...)."""
    torch_pyext: list[str] = Field(default_factory=list)
    has_torch: bool = False
    kernels: list[KernelInfo] = Field(default_factory=list)
    raw: dict = Field(default_factory=dict)

    def kernels_for(self, backend: str) -> list[KernelInfo]:
        return [k for k in self.kernels if k.backend == backend]

    @property
    def python_package_dir(self) -> Path:
        """torch-ext/<name with - as _>/: the Python API the builder packages."""
        return self.root / "torch-ext" / self.name.replace("-", "_")


def load_build_toml(root: Path) -> dict:
    """build.toml as a TOML table: the one place it is read from disk. UserError when it is
    missing or is not TOML."""
    path = root / "build.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no build.toml") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None


def read_project(root: Path) -> ProjectInfo:
    """Read build.toml leniently. Raises UserError only when it cannot be read as TOML."""
    raw = load_build_toml(root)
    general = raw.get("general", {}) if isinstance(raw.get("general"), dict) else {}
    torch = raw.get("torch") if isinstance(raw.get("torch"), dict) else None
    kernels: list[KernelInfo] = []
    table = raw.get("kernel", {})
    if isinstance(table, dict):
        for name, spec in table.items():
            if not isinstance(spec, dict):
                continue
            backend = spec.get("backend") or {"cpp-cuda": "cuda", "cpp-rocm": "rocm"}.get(
                str(spec.get("language", "")), str(spec.get("language", "")))
            kernels.append(KernelInfo(
                name=name, backend=str(backend),
                src=[str(s) for s in spec.get("src", []) if isinstance(s, str)],
                depends=[str(s) for s in spec.get("depends", [])],
                cuda_capabilities=spec.get("cuda-capabilities"),
                cuda_flags=[str(s) for s in spec.get("cuda-flags", [])],
                cxx_flags=[str(s) for s in spec.get("cxx-flags", [])],
                include=[str(s) for s in spec.get("include", [])],
            ))
    edition = general.get("edition")
    return ProjectInfo(
        root=root, name=str(general.get("name", root.name)),
        edition=edition if isinstance(edition, int) else None,
        backends=[str(b) for b in general.get("backends", [])],
        torch_src=[str(s) for s in (torch or {}).get("src", [])],
        torch_pyext=[str(s) for s in (torch or {}).get("pyext", [])],
        has_torch=torch is not None, kernels=kernels, raw=raw,
    )
