"""The build_toml check's file-level findings: listed sources that exist, includes that resolve,
builder-supplied files a project must not ship, and a Python package that registers its ops."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.common.results import Finding
from harness.common.pyparse import parse_python


def _inside(root: Path, rel: str) -> Path | None:
    """root/rel when rel is a plain relative path that stays inside root, else None."""
    if not rel or rel.startswith("/") or "\\" in rel or ".." in PurePosixPath(rel).parts:
        return None
    path = root / rel
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return path


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_text(path: Path, limit: int = 4_000_000) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.MULTILINE)


_GLOB_CHARS = set("*?[")


# kernel-builder's torch-ops check: decorators that register an op by qualified name.
_REGISTERING_DECORATORS = {"custom_op", "triton_op", "register_kernel", "register_fake",
                           "register_vmap", "register_torch_dispatch"}


@dataclass
class _SourceList:
    key: str
    """`kernel.relu.src` or `torch.src`."""
    entries: list[str]
    include_dirs: list[str]
    checked: bool
    """False for backends we do not check (their files still count as listed)."""


def _src_entry_findings(root: Path, lists: list[_SourceList]) -> list[Finding]:
    findings: list[Finding] = []
    for src in lists:
        for entry in src.entries:
            if _GLOB_CHARS & set(entry):
                findings.append(Finding(severity="error", key=src.key, reason=(
                    f"{entry!r} is a glob: the builder does not expand globs; list each file")))
                continue
            path = _inside(root, entry)
            if path is None:
                findings.append(Finding(severity="error", key=src.key, reason=(
                    f"{entry!r} is not a relative path inside the project")))
            elif not path.is_file():
                severity = "error" if src.checked else "note"
                findings.append(Finding(severity=severity, key=src.key, reason=(
                    f"{entry!r} is listed but does not exist")))
        for folder in src.include_dirs:
            path = _inside(root, folder)
            if path is None or not path.is_dir():
                findings.append(Finding(severity="warning", key=src.key.replace(".src", ".include"), reason=(
                    f"include folder {folder!r} does not exist in the project")))
    return findings


def _resolve_include(root: Path, includer: Path, target: str, include_dirs: list[str]) -> Path | None:
    bases = [includer.parent, root] + [root / d for d in include_dirs]
    for base in bases:
        candidate = Path(os.path.normpath(base / target))
        try:
            resolved = candidate.resolve()
            resolved.relative_to(root.resolve())
        except (ValueError, OSError):
            continue
        if candidate.is_file():
            return candidate
    return None


def _include_findings(root: Path, lists: list[_SourceList], all_listed: set[str]) -> tuple[list[Finding], set[str]]:
    """Errors for project files that a listed source #includes but no src lists;
    returns the findings and every project file the checked sources reach."""
    findings: list[Finding] = []
    reached: set[str] = set()
    reported: set[tuple[str, str]] = set()
    for src in lists:
        if not src.checked:
            continue
        queue = [e for e in src.entries if (p := _inside(root, e)) is not None and p.is_file()]
        seen: set[str] = set()
        while queue:
            rel = queue.pop()
            if rel in seen:
                continue
            seen.add(rel)
            reached.add(rel)
            includer = root / rel
            for _, target in _INCLUDE_RE.findall(_read_text(includer)):
                found = _resolve_include(root, includer, target, src.include_dirs)
                if found is None:
                    continue  # a system, torch or dependency header: the compile check sees it
                found_rel = _rel(root, found)
                if found_rel not in all_listed and (src.key, found_rel) not in reported:
                    reported.add((src.key, found_rel))
                    if found.name == "registration.h":
                        findings.append(Finding(severity="warning", key=src.key, reason=(
                            f"{rel} includes the project's own {found_rel}: the builder supplies "
                            "registration.h and its copy is the one used")))
                    else:
                        findings.append(Finding(severity="error", key=src.key, reason=(
                            f"{found_rel} is #included by {rel} but no src lists it: "
                            "the builder does not see unlisted files")))
                queue.append(found_rel)
    return findings, reached


def _hardcoded_namespace_cpp(text: str) -> str | None:
    """A TORCH_LIBRARY* use whose namespace is a literal name, not a macro parameter."""
    params: set[str] = set()
    for m in re.finditer(r"#[ \t]*define[ \t]+\w+\(([^)\n]*)\)", text):
        params.update(p.strip() for p in m[1].split(","))
    for m in re.finditer(r"\b(?:STABLE_)?TORCH_LIBRARY(?:_IMPL|_FRAGMENT)?\s*\(\s*(\w+)", text):
        name = m[1]
        if name not in params and name != "TORCH_EXTENSION_NAME":
            return name
    return None


def _hardcoded_namespace_py(text: str) -> str | None:
    m = re.search(r"torch\.ops\.(\w+)", text)
    if m and m[1] not in ("load_library", "import_module"):
        return f"torch.ops.{m[1]}"
    m = re.search(r"""["'](_?\w+)::""", text)
    return f"{m[1]}::" if m else None


def _builder_file_findings(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in sorted(root.rglob("registration.h")):
        rel = _rel(root, path)
        literal = _hardcoded_namespace_cpp(_read_text(path))
        if literal:
            findings.append(Finding(severity="error", key=rel, reason=(
                f"supplied registration.h hard-codes the op namespace {literal!r}; the builder "
                "supplies this file and names the namespace per build")))
        else:
            findings.append(Finding(severity="warning", key=rel, reason=(
                "registration.h is supplied by the builder: do not ship it (the builder's copy is used)")))
    for path in sorted(root.rglob("_ops.py")):
        rel = _rel(root, path)
        literal = _hardcoded_namespace_py(_read_text(path))
        if literal:
            findings.append(Finding(severity="error", key=rel, reason=(
                f"supplied _ops.py hard-codes the op namespace ({literal}); the builder generates "
                "_ops.py with the extension's own name (_<name>_<backend>_<hash>)")))
        else:
            findings.append(Finding(severity="warning", key=rel, reason=(
                "_ops.py is generated by the builder: do not ship it (it is replaced)")))
    return findings


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _python_findings(root: Path, package_dir: Path) -> list[Finding]:
    """The Python package the builder ships: present, parses, registers ops through
    add_op_namespace_prefix (kernel-builder's own build check)."""
    rel_pkg = _rel(root, package_dir)
    if not (package_dir / "__init__.py").is_file():
        return [Finding(severity="error", key=rel_pkg, reason=(
            f"the builder packages {rel_pkg}/ as the Python module (general.name with - as _); "
            "it has no __init__.py")) ]
    findings: list[Finding] = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = _rel(root, path)
        if path.name == "_ops.py":
            continue  # reported by _builder_file_findings
        try:
            tree = parse_python(_read_text(path), filename=rel)
        except SyntaxError as err:
            findings.append(Finding(severity="error", key=f"{rel}:{err.lineno or 0}",
                                    reason=f"Python syntax error: {err.msg}"))
            continue
        except (ValueError, RecursionError, MemoryError) as err:
            findings.append(Finding(severity="error", key=rel, reason=f"cannot parse as Python: {type(err).__name__}"))
            continue
        for node in ast.iter_child_nodes(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for deco in node.decorator_list:
                name = _decorator_name(deco)
                if name not in _REGISTERING_DECORATORS or not isinstance(deco, ast.Call) or not deco.args:
                    continue
                first = deco.args[0]
                if _decorator_name(first) != "add_op_namespace_prefix":
                    findings.append(Finding(severity="error", key=f"{rel}:{deco.lineno}", reason=(
                        f"@{name} on {node.name} names the op without add_op_namespace_prefix: "
                        "kernel-builder rejects hard-coded op namespaces")))
    return findings


__all__ = []
