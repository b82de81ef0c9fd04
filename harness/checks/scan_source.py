"""Reading sources for the scan: C/C++/CUDA text with comments (and strings) blanked, Python
parsed into events, and the rules matched line by line into hits."""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import dataclass

from harness.checks.scan_paths import READ_CALLS, OwnPaths
from harness.checks.scan_rules import NOT_COMPUTE, Rule
from harness.common.results import Finding
from harness.execute.aten_ops import TRIVIAL_ATEN
from harness.common.pyparse import parse_python

_SHOWN_CODE = 110


# --- C/C++/CUDA text ------------------------------------------------------------------

def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def strip_c(src: str) -> tuple[str, str]:
    """(code, code_with_strings): comments blanked in both (newlines kept, so offsets and
    line numbers still match the source); string and char literal contents blanked in `code`."""
    code: list[str] = []
    full: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            code.append(_blank(src[i:j]))
            full.append(_blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            code.append(_blank(src[i:j]))
            full.append(_blank(src[i:j]))
            i = j
        elif c == '"' and i > 0 and src[i - 1] == "R" and (m := re.match(r'"([^()\\\s]{0,16})\(', src[i:])):
            end = src.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            code.append('"' + _blank(src[i + 1:j - 1]) + '"')
            full.append(src[i:j])
            i = j
        elif c == '"' or (c == "'" and not _digit_separator(src, i)):
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            code.append(c + _blank(src[i + 1:j - 1]) + src[j - 1:j] if j - i >= 2 else src[i:j])
            full.append(src[i:j])
            i = j
        else:
            j = i + 1
            while j < n and src[j] not in "/\"'":
                j += 1
            code.append(src[i:j])
            full.append(src[i:j])
            i = j
    return "".join(code), "".join(full)


def _digit_separator(src: str, i: int) -> bool:
    """C++14 1'000'000: a quote inside a number literal."""
    j = i
    while j > 0 and (src[j - 1].isalnum() or src[j - 1] in "_'"):
        j -= 1
    return j < i and src[j].isdigit()


# --- Python events --------------------------------------------------------------------

_MUTABLE_CALLS = {"dict", "list", "set", "collections.OrderedDict", "collections.defaultdict",
                  "collections.deque", "weakref.WeakValueDictionary", "weakref.WeakKeyDictionary"}


class _PyEvents(ast.NodeVisitor):
    """Collect (line, "kind name") events from a parsed Python file."""

    def __init__(self, tree: ast.Module, *, max_up: int = 1) -> None:
        self.events: list[tuple[int, str]] = []
        self.alias: dict[str, str] = {}
        # Names the file defines itself: `rms_norm(...)` is the package's function, not torch's.
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.alias.setdefault(node.name, "." + node.name)
        self.docstrings = {id(node.value) for node in ast.walk(tree)
                           if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
        self.module_body = {id(node) for node in tree.body}
        # Paths into the package's own folder, with every import known (so os.path.dirname resolves).
        saved = dict(self.alias)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._bind_import(node)
        self.own = OwnPaths(tree, self.dotted, max_up=max_up)
        self.alias = saved

    def emit(self, node: ast.AST, kind: str, name: str) -> None:
        self.events.append((getattr(node, "lineno", 0), f"{kind} {name}"))

    def dotted(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.alias.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            return f"{self.dotted(node.value)}.{node.attr}"
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "getattr" and node.args:
                attr = node.args[1] if len(node.args) > 1 else None
                name = attr.value if isinstance(attr, ast.Constant) and isinstance(attr.value, str) else "?"
                return f"{self.dotted(node.args[0])}.{name}"
            return f"{self.dotted(node.func)}()"
        if isinstance(node, ast.Subscript):
            return f"{self.dotted(node.value)}[]"
        return "?"

    def _bind_import(self, node: ast.Import | ast.ImportFrom, emit: bool = False) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if emit:
                    self.emit(node, "import", a.name)
                self.alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            return
        module = "." * node.level + (node.module or "")
        for a in node.names:
            full = module + a.name if module.endswith(".") else f"{module}.{a.name}"
            if emit:
                self.emit(node, "import", full)
            self.alias[a.asname or a.name] = full

    def visit_Import(self, node: ast.Import) -> None:
        self._bind_import(node, emit=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._bind_import(node, emit=True)

    def _targets(self, node: ast.AST, targets: list[ast.expr], value: ast.expr | None) -> None:
        for target in targets:
            for t in ast.walk(target) if isinstance(target, (ast.Tuple, ast.List)) else [target]:
                if isinstance(t, (ast.Attribute, ast.Subscript)):
                    self.emit(node, "assign", self.dotted(t))
                elif isinstance(t, ast.Name) and id(node) in self.module_body and _is_mutable(value, self) \
                        and not (t.id.startswith("__") and t.id.endswith("__")):
                    self.emit(node, "module-state", t.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node, node.targets, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets(node, [node.target], None)
        if isinstance(node.op, ast.MatMult):
            self.emit(node, "call", "@")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets(node, [node.target], node.value)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node, node.targets, None)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self.emit(node, "global", name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
            if _is_mutable(default, self):
                self.emit(default, "default-mutable", node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        func = self.dotted(node.func)
        # A file call on the package's own folder: "call open @own" (package data, a warning).
        own = READ_CALLS.search(func) is not None and self.own.call_is_own(node)
        self.emit(node, "call", f"{func} @own" if own else func)
        if func == "getattr":  # getattr(F, "softmax") reads F.softmax
            self.emit(node, "ref", self.dotted(node))
        if func == "setattr" and node.args:
            attr = node.args[1] if len(node.args) > 1 else None
            name = attr.value if isinstance(attr, ast.Constant) and isinstance(attr.value, str) else "?"
            self.emit(node, "setattr", f"{self.dotted(node.args[0])}.{name}")
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self.emit(node, "arg", f"{func} {_one_line(node.args[0].value)}")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult):
            self.emit(node, "call", "@")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self.emit(node, "ref", self.dotted(node))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.emit(node, "ref", self.dotted(node))

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.docstrings:
            self.emit(node, "string", _one_line(node.value))


def _is_mutable(value: ast.expr | None, scan: _PyEvents) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and scan.dotted(value.func) in _MUTABLE_CALLS


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def python_events(src: str, *, package_depth: int = 0) -> list[tuple[int, str]]:
    """(line, "kind name") events of a Python source; SyntaxError propagates. `package_depth`:
    how many folders below the package root the file is (how far up its own data may be)."""
    tree = parse_python(src)
    visitor = _PyEvents(tree, max_up=1 + package_depth)
    visitor.visit(tree)
    return visitor.events


# --- Matching ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    rule: Rule
    path: str
    """Relative to the project root."""
    line: int
    matched: str
    code: str
    """The source line, stripped and shortened."""

    def finding(self) -> Finding:
        return Finding(severity=self.rule.severity, key=f"{self.path}:{self.line}",
                       reason=f"{self.rule.family}: {self.rule.reason} ({self.matched}): `{self.code}`")


def _compute_op(name: str | None) -> bool:
    return bool(name) and name == name.lower() and name not in TRIVIAL_ATEN \
        and name.lower() not in NOT_COMPUTE and not name.startswith("__")


def _shown(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= _SHOWN_CODE else line[:_SHOWN_CODE - 3] + "..."


def scan_cpp(src: str, rel: str, rules: list[Rule]) -> list[Hit]:
    code, full = strip_c(src)
    starts = [0] + [m.end() for m in re.finditer("\n", src)]
    lines = src.splitlines() or [""]
    hits: list[Hit] = []
    for rule in rules:
        if rule.lang != "cpp":
            continue
        for m in re.finditer(rule.pattern, full if rule.strings else code):
            name = m.groupdict().get("name")
            if rule.ops_only and not _compute_op(name):
                continue
            line = bisect.bisect_right(starts, m.start())
            matched = _shown(full[m.start():m.end()])
            hits.append(Hit(rule, rel, line, matched, _shown(lines[min(line, len(lines)) - 1])))
    return hits


def scan_python(src: str, rel: str, rules: list[Rule], events: list[tuple[int, str]]) -> list[Hit]:
    lines = src.splitlines() or [""]
    hits: list[Hit] = []
    for rule in rules:
        if rule.lang != "py":
            continue
        pattern = re.compile(rule.pattern)
        for line, event in events:
            m = pattern.search(event)
            if m is None:
                continue
            if rule.ops_only and not _compute_op(m.groupdict().get("name")):
                continue
            hits.append(Hit(rule, rel, line, event, _shown(lines[max(line, 1) - 1])))
    return hits
