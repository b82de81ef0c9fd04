"""Every third-party module that harness/ and sandbox/ import is declared in pyproject.toml
(a dependency or an extra), as issue 19 item 13 asks: an import that works only because some
other package pulled its dependency in breaks on the next release of that package.

An import inside a `try:` is optional (the code copes without it) and is not required to be
declared; everything else is."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"harness", "sandbox", "tests", "__future__"}


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_norm(re.split(r"[\s\[<>=!~;@]", s, maxsplit=1)[0]) for s in specs}


def _imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(required, optional) top-level module names imported by absolute imports."""
    required: set[str] = set()
    optional: set[str] = set()

    def visit(node: ast.AST, in_try: bool) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            (optional if in_try else required).add(name.split(".")[0])
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            guarded = in_try or (isinstance(node, ast.Try) and field == "body")
            for child in children:
                if isinstance(child, ast.AST):
                    visit(child, guarded)

    visit(tree, False)
    return required, optional


def test_every_third_party_import_is_declared() -> None:
    dists = importlib.metadata.packages_distributions()
    declared = _declared()
    missing: dict[str, str] = {}
    for path in sorted([*(ROOT / "harness").rglob("*.py"), *(ROOT / "sandbox").rglob("*.py")]):
        required, _ = _imports(ast.parse(path.read_text(encoding="utf-8")))
        for module in sorted(required - FIRST_PARTY - set(sys.stdlib_module_names)):
            candidates = {_norm(d) for d in dists.get(module, [])} | {_norm(module)}
            if not candidates & declared:
                missing.setdefault(module, str(path.relative_to(ROOT)))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_rule_sees_a_plain_import_and_lets_a_guarded_one_be() -> None:
    required, optional = _imports(ast.parse(
        "import markupsafe\nfrom yaml import safe_load\ndef f():\n    try:\n        import pynvml\n"
        "    except ImportError:\n        return None\n"))
    assert required == {"markupsafe", "yaml"} and optional == {"pynvml"}
