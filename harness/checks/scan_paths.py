"""Which paths in a Python file point into its own package: the scan's view of package data.

A kernel package may ship data beside its code (kernel-builder packages `pyext` files such as
JSON tuning tables) and read it through `Path(__file__).parent / "x.json"`,
`os.path.dirname(__file__)` or `importlib.resources.files(__package__)`. Reading or writing
there is normal, so the scan warns instead of failing (scan_rules: "reads_data ... @own").
Reaching the checker's or the reference's files is the trust boundary's to stop (the candidate
runs where they are out of reach); this module only keeps the scan from failing honest packages.

A path counts as the package's own when its expression starts from `__file__` (or
importlib.resources on `__package__` / `__name__`), or from a name assigned such a path anywhere
in the file, and shows no way out of the package: no ".." or absolute string, no `parents`,
`os.pardir` or `expanduser`, and no more `.parent` / `dirname` steps than the file's depth in
the package allows. Names are followed flow-insensitively (one file, every scope at once).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

#: Calls that name a package's own resources when given __package__ / __name__.
_RESOURCE_CALLS = re.compile(r"^(importlib\.resources|importlib_resources)\.(files|path|as_file|open_text|"
                             r"open_binary|read_text|read_binary|contents)$|^pkgutil\.get_data$")
_PACKAGE_NAMES = ("__package__", "__name__", "__spec__")
#: Calls that read, list or write files: these get "@own" when their path is the package's own.
READ_CALLS = re.compile(r"(^|\.)(open|read_text|read_bytes|write_text|write_bytes|load|glob|iglob|rglob|iterdir|"
                        r"listdir|scandir|walk|fromfile|memmap|loadtxt|genfromtxt|from_file)$")
_ESCAPE_STRING = re.compile(r"(^|[/\\])\.\.([/\\]|$)|^[/\\~]")
_ESCAPE_ATTRS = {"parents", "pardir", "expanduser", "home", "root", "anchor", "cwd"}


def _steps_up(node: ast.AST, dotted: Callable[[ast.AST], str]) -> int:
    """`.parent` attributes and dirname() calls in an expression: how far up it walks."""
    ups = 0
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr == "parent":
            ups += 1
        elif isinstance(sub, ast.Call) and dotted(sub.func) in ("os.path.dirname", "posixpath.dirname"):
            ups += 1
    return ups


def _escapes(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _ESCAPE_STRING.search(sub.value):
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in _ESCAPE_ATTRS:
            return True
    return False


def _roots_in_package(node: ast.AST, own, dotted: Callable[[ast.AST], str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and (sub.id == "__file__" or sub.id in own):
            return True
        if isinstance(sub, ast.Call) and _RESOURCE_CALLS.match(dotted(sub.func)) and sub.args \
                and isinstance(sub.args[0], ast.Name) and sub.args[0].id in _PACKAGE_NAMES:
            return True
    return False


class OwnPaths:
    """The package-own path names of one file, and a test for expressions."""

    def __init__(self, tree: ast.Module, dotted: Callable[[ast.AST], str], *, max_up: int = 1) -> None:
        self.dotted = dotted
        self.max_up = max_up
        self.names: dict[str, int] = {}
        """Own path names -> how many steps up from the file's folder they have walked."""
        bindings: list[tuple[str, ast.AST]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                bindings += [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None \
                    and isinstance(node.target, ast.Name):
                bindings.append((node.target.id, node.value))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                bindings += [(i.optional_vars.id, i.context_expr) for i in node.items
                             if isinstance(i.optional_vars, ast.Name)]
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(node.target, ast.Name):
                bindings.append((node.target.id, node.iter))
        changed = True
        while changed:  # a name assigned from an own path is one too, in any order of definition
            changed = False
            for name, value in bindings:
                if name not in self.names and (ups := self._ups(value)) is not None:
                    self.names[name] = ups
                    changed = True

    def _ups(self, node: ast.AST) -> int | None:
        """Steps up from the file's folder when `node` is a path inside the package, else None."""
        if not _roots_in_package(node, self.names, self.dotted) or _escapes(node):
            return None
        inherited = max((self.names.get(n.id, 0) for n in ast.walk(node) if isinstance(n, ast.Name)), default=0)
        ups = inherited + _steps_up(node, self.dotted)
        return ups if ups <= self.max_up else None

    def is_own(self, node: ast.AST) -> bool:
        return self._ups(node) is not None

    def call_is_own(self, call: ast.Call) -> bool:
        """A file call whose path (receiver, first argument or a file/path keyword) is the package's."""
        func = call.func
        if isinstance(func, ast.Attribute) and self.is_own(func.value):
            return True
        if call.args and self.is_own(call.args[0]):
            return True
        return any(k.arg in ("file", "path", "fp", "fname", "top") and self.is_own(k.value) for k in call.keywords)


__all__ = ["READ_CALLS", "OwnPaths"]
