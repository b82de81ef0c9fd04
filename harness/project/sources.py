"""Which files of a kernel-builder project are sources: one answer for every stage.

- `source_files(root)`: every C/C++/CUDA file a compile could reach (build.toml check, nvcc).
- `source_bytes(root)`: the same files' content, what a compile is keyed and built from.
- `listed_sources(info)`: what build.toml lists, the project headers those include, and the
  Python package (the scan reads exactly the code that gets built and imported).
- `backend_units(info, backend)`: the translation units of one backend's kernels plus the binding.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from harness.project.info import ProjectInfo

#: C, C++ and CUDA files, headers included.
C_SUFFIXES = (".cu", ".cuh", ".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".cxx", ".inl", ".inc", ".tcc")
#: Files a host compiler builds as translation units.
CXX_UNIT_SUFFIXES = (".cpp", ".cc", ".cxx", ".c")
_SKIPPED_DIRS = ("build", "__pycache__")
_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.MULTILINE)


def inside(path: Path, root: Path) -> bool:
    """Is `path`, links resolved, inside `root`? (A project file may not point elsewhere.)"""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def source_files(root: Path) -> list[str]:
    """Every C/C++/CUDA file under `root` by relative path, sorted; symlinks, hidden folders
    and build outputs are left out."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.suffix not in C_SUFFIXES:
            continue
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if any(part.startswith(".") or part in _SKIPPED_DIRS for part in rel.parts[:-1]):
            continue
        out.append(rel.as_posix())
    return out


def source_bytes(root: Path) -> dict[str, bytes]:
    """source_files with their content."""
    return {rel: (root / rel).read_bytes() for rel in source_files(root)}


def listed_sources(info: ProjectInfo, strip_comments=lambda text: text) -> tuple[list[Path], list[Path]]:
    """(C/C++/CUDA files, Python files): build.toml's sources with the project headers they
    include, and the Python package. Only files inside the project, sorted. `strip_comments`
    keeps an #include inside a comment from counting."""
    root = info.root
    listed: list[Path] = []
    for entry in [*info.binding_src, *(s for k in info.kernels for s in k.src)]:
        matches = sorted(root.glob(entry)) if any(ch in entry for ch in "*?[") else [root / entry]
        listed.extend(p for p in matches if p.is_file() and inside(p, root))
    c_files = [p for p in listed if p.suffix in C_SUFFIXES]
    py_files = [p for p in listed if p.suffix == ".py"]
    seen = {p.resolve() for p in c_files}
    queue = list(c_files)
    while queue:  # project headers reached by #include "...": code that is compiled though unlisted
        current = queue.pop()
        try:
            text = current.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for inc in _INCLUDE_RE.findall(strip_comments(text)):
            for base in (current.parent, root):
                cand = base / inc
                if cand.is_file() and inside(cand, root) and cand.resolve() not in seen:
                    seen.add(cand.resolve())
                    c_files.append(cand)
                    queue.append(cand)
                    break
    pkg = info.python_package_dir
    if pkg.is_dir():
        py_files.extend(p for p in pkg.rglob("*.py") if inside(p, root))
    unique = lambda files: sorted({p.resolve(): p for p in files}.values())  # noqa: E731
    return unique(c_files), unique(py_files)


def all_sources(root: Path) -> tuple[list[Path], list[Path]]:
    """(C/C++/CUDA files, Python files) anywhere in the folder: for a project whose build.toml
    cannot be read, so nothing is left unread."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and inside(p, root)]
    return [p for p in files if p.suffix in C_SUFFIXES], [p for p in files if p.suffix == ".py"]


def backend_units(info: ProjectInfo, backend: str) -> list[str]:
    """The host-compiled translation units of `backend`'s kernels, then the torch binding's."""
    out: list[str] = []
    for rel in [s for k in info.kernels_for(backend) for s in k.src] + info.torch_src:
        if rel.endswith(CXX_UNIT_SUFFIXES) and rel not in out:
            out.append(rel)
    return out


__all__ = ["C_SUFFIXES", "CXX_UNIT_SUFFIXES", "all_sources", "backend_units", "inside", "listed_sources",
           "source_bytes", "source_files"]
