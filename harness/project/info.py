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


#: The frontends a project binds through: exactly one section of these (build.toml check).
FRAMEWORKS = ("torch", "torch-noarch", "tvm-ffi")


class ProjectInfo(BaseModel):
    root: Path
    name: str
    edition: int | None
    """5 for the current format; None when the key is absent (legacy)."""
    backends: list[str] = Field(default_factory=list)
    framework: str | None = None
    """torch | torch-noarch | tvm-ffi: the one such section present; None when none (or several)."""
    torch_src: list[str] = Field(default_factory=list)
    """[torch] src: the binding sources (torch-ext/torch_binding.cpp, ...)."""
    torch_pyext: list[str] = Field(default_factory=list)
    has_torch: bool = False
    binding_src: list[str] = Field(default_factory=list)
    """The binding's sources: [torch] src, or [tvm-ffi] src."""
    binding_cxx_flags: list[str] = Field(default_factory=list)
    """[torch] / [tvm-ffi] cxx-flags: kernel-builder gives them to the binding's C++ units only."""
    binding_include: list[str] = Field(default_factory=list)
    """[torch] / [tvm-ffi] include: folders (from the project root) on the binding's include path."""
    stable_abi: str | dict[str, str] | None = None
    """[torch] stable-abi: one torch version for every backend, or a backend -> version table."""
    torch_minver: str | None = None
    torch_maxver: str | None = None
    kernels: list[KernelInfo] = Field(default_factory=list)
    raw: dict = Field(default_factory=dict)

    def kernels_for(self, backend: str) -> list[KernelInfo]:
        return [k for k in self.kernels if k.backend == backend]

    def stable_abi_for(self, backend: str) -> str | None:
        """The torch version `backend` targets through the stable ABI ("2.11"), or None when
        that backend builds against the full (unstable) ABI."""
        if isinstance(self.stable_abi, dict):
            return self.stable_abi.get(backend)
        return self.stable_abi

    @property
    def python_package_dir(self) -> Path:
        """<ext dir>/<name with - as _>/: the Python API the builder packages; the ext dir is
        tvm-ffi-ext/ for a [tvm-ffi] project, torch-ext/ otherwise."""
        ext_dir = "tvm-ffi-ext" if self.framework == "tvm-ffi" else "torch-ext"
        return self.root / ext_dir / self.name.replace("-", "_")


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


def _strs(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _stable_abi(value) -> str | dict[str, str] | None:
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if isinstance(v, (str, int, float))}
    return None


def read_project(root: Path) -> ProjectInfo:
    """Read build.toml leniently. Raises UserError only when it cannot be read as TOML."""
    raw = load_build_toml(root)
    general = raw.get("general", {}) if isinstance(raw.get("general"), dict) else {}
    torch = raw.get("torch") if isinstance(raw.get("torch"), dict) else None
    present = [f for f in FRAMEWORKS if f in raw]
    framework = present[0] if len(present) == 1 else None
    binding = raw[framework] if framework == "tvm-ffi" and isinstance(raw[framework], dict) else (torch or {})
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
                depends=_strs(spec.get("depends")),
                cuda_capabilities=spec.get("cuda-capabilities"),
                cuda_flags=_strs(spec.get("cuda-flags")),
                cxx_flags=_strs(spec.get("cxx-flags")),
                include=_strs(spec.get("include")),
            ))
    edition = general.get("edition")
    return ProjectInfo(
        root=root, name=str(general.get("name", root.name)),
        edition=edition if isinstance(edition, int) else None,
        backends=[str(b) for b in general.get("backends", [])],
        framework=framework,
        torch_src=_strs((torch or {}).get("src")),
        torch_pyext=_strs((torch or {}).get("pyext")),
        has_torch=torch is not None,
        binding_src=_strs(binding.get("src")),
        binding_cxx_flags=_strs(binding.get("cxx-flags")),
        binding_include=_strs(binding.get("include")),
        stable_abi=_stable_abi((torch or {}).get("stable-abi")),
        torch_minver=str(torch["minver"]) if torch and "minver" in torch else None,
        torch_maxver=str(torch["maxver"]) if torch and "maxver" in torch else None,
        kernels=kernels, raw=raw,
    )
