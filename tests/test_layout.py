"""The layout's promises (issue 23), kept by a test so they stay kept: sandbox/ imports nothing
from harness/, no import cycle among kernelgrade's modules, and no module much over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 450  # "about 400": room for a docstring, not for a second job


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in ("harness", "sandbox"):
        for path in (REPO / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = owner(f"{node.module}.{alias.name}") or owner(node.module)
                if target:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found.update(t for a in node.names if (t := owner(a.name)))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = _imports(path, modules) - {name, "harness", "sandbox"}
        # a package's __init__ importing its own submodules is not a cycle through the package
        graph[name] = deps
    return graph


def test_sandbox_imports_nothing_from_harness() -> None:
    offenders = {m: sorted(d for d in deps if d.startswith("harness"))
                 for m, deps in _graph().items() if m.startswith("sandbox")}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_no_module_over_about_400_lines() -> None:
    big = {str(p.relative_to(REPO)): n for p in _modules().values()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch) -> None:
    """The guard above can fail: two modules importing each other are reported."""
    import tests.test_layout as layout

    monkeypatch.setattr(layout, "_graph", lambda: {"a": {"b"}, "b": {"a"}, "c": set()})
    try:
        layout.test_no_import_cycle()
    except AssertionError as err:
        assert "'a'" in str(err) and "'b'" in str(err)
    else:
        raise AssertionError("a two-module cycle was not reported")
