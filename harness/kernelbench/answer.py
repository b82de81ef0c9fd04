"""KernelBench's answer format: a Python file defining `ModelNew` whose custom code is
compiled by `torch.utils.cpp_extension.load_inline` (KernelBench's prompts ask for that).

The answer is never run here. Its load_inline calls are read statically (string literals,
names bound to them at module level, `+`, constant f-strings, textwrap.dedent); adapt.py
turns them into a kernel-builder project, so the answer is built by the same sandboxed
builder and graded by the same runner and anti-cheat checks as any other answer.
"""

from __future__ import annotations

import ast
import hashlib
import re
import textwrap
from dataclasses import dataclass

from harness.common.pyparse import parse_python

#: load_inline's positional parameters (torch/utils/cpp_extension.py, 2.11 .. 2.14).
POSITIONAL = ("name", "cpp_sources", "cuda_sources", "sycl_sources", "functions", "extra_cflags",
              "extra_cuda_cflags", "extra_sycl_cflags", "extra_ldflags", "extra_include_paths")
SHIM_NAME = "_kg_load_inline"
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class InlineCall:
    """One load_inline call, its arguments evaluated."""

    name: str
    cpp_sources: tuple[str, ...]
    cuda_sources: tuple[str, ...]
    functions: tuple[str, ...]
    extra_cflags: tuple[str, ...] = ()
    extra_cuda_cflags: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """What the shim checks at import: the sources the answer passes are the ones built."""
        return sources_digest(list(self.cpp_sources), list(self.cuda_sources))


def sources_digest(cpp_sources, cuda_sources) -> str:
    """sha256 over both source lists, as load_inline receives them (a str or a list of str)."""
    def norm(value) -> list[str]:
        if value is None:
            return []
        return [value] if isinstance(value, str) else [str(v) for v in value]

    text = "\0".join(norm(cpp_sources)) + "\1" + "\0".join(norm(cuda_sources))
    return hashlib.sha256(text.encode()).hexdigest()


class NotAdaptable(Exception):
    """The answer cannot be adapted; the message says why (a grading result, not an error)."""


def extract_source(text: str) -> str | None:
    """The Python source defining ModelNew: the whole text when it parses as Python and
    defines ModelNew, else the last fenced code block that does."""
    if "class ModelNew" in text:
        try:
            parse_python(text)
            return text
        except SyntaxError:
            pass
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    for body in reversed(blocks):
        if "class ModelNew" in body:
            return body
    return None


class _Evaluator:
    """Evaluates load_inline arguments from module-level literals, never running the answer."""

    def __init__(self, tree: ast.Module) -> None:
        self.names: dict[str, ast.AST] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self.names[stmt.targets[0].id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self.names[stmt.target.id] = stmt.value

    def value(self, node: ast.AST, depth: int = 0):
        if depth > 50:
            raise NotAdaptable("load_inline arguments refer to each other too deeply")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.value(self.names[node.id], depth + 1)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.value(k, depth + 1): self.value(v, depth + 1) for k, v in zip(node.keys, node.values)
                    if k is not None}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.value(node.left, depth + 1) + self.value(node.right, depth + 1)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue) and part.format_spec is None and part.conversion == -1:
                    parts.append(str(self.value(part.value, depth + 1)))
                else:
                    parts.append(str(self.value(part, depth + 1)))
            return "".join(parts)
        if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords \
                and _dotted(node.func) in ("textwrap.dedent", "dedent"):
            return textwrap.dedent(self.value(node.args[0], depth + 1))
        shown = ast.unparse(node)
        raise NotAdaptable(f"a load_inline argument is not a literal the adapter can read: {shown[:80]!r}")


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _inline_names(tree: ast.Module) -> set[str]:
    """Names bound to load_inline by `from torch.utils.cpp_extension import load_inline [as X]`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch.utils.cpp_extension":
            names.update(a.asname or a.name for a in node.names if a.name == "load_inline")
    return names


def _is_inline(call: ast.Call, names: set[str]) -> bool:
    func = call.func
    return (isinstance(func, ast.Name) and func.id in names) or \
        (isinstance(func, ast.Attribute) and func.attr == "load_inline")


def _strings(value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise NotAdaptable(f"load_inline's {what} is not a string or a list of strings")


def read_inline_calls(source: str) -> list[InlineCall]:
    """Every load_inline call of the answer, evaluated; NotAdaptable says why not."""
    try:
        tree = parse_python(source)
    except SyntaxError as err:
        raise NotAdaptable(f"not valid Python: line {err.lineno}: {err.msg}") from None
    if not any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in ast.walk(tree)):
        raise NotAdaptable("defines no class ModelNew")
    loads = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
             and n.module == "torch.utils.cpp_extension" for a in n.names if a.name == "load"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (_dotted(node.func) in loads or (
                _dotted(node.func).endswith("cpp_extension.load"))):
            raise NotAdaptable("uses cpp_extension.load with source files; only load_inline is supported")
    names, ev = _inline_names(tree), _Evaluator(tree)
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _is_inline(node, names)):
            continue
        args = {POSITIONAL[i]: a for i, a in enumerate(node.args) if i < len(POSITIONAL)}
        args.update({k.arg: k.value for k in node.keywords if k.arg})
        got = {k: ev.value(v) for k, v in args.items()}
        if got.get("functions") is None:
            raise NotAdaptable("load_inline without functions=: the adapter registers the functions it names")
        if got.get("sycl_sources") or got.get("extra_include_paths"):
            raise NotAdaptable("load_inline with sycl_sources or extra_include_paths is not supported")
        call = InlineCall(name=str(got.get("name") or "inline"), cpp_sources=_strings(got.get("cpp_sources"),
                          "cpp_sources"), cuda_sources=_strings(got.get("cuda_sources"), "cuda_sources"),
                          functions=_strings(got.get("functions"), "functions"),
                          extra_cflags=tuple(f for f in _strings(got.get("extra_cflags"), "extra_cflags") if f),
                          extra_cuda_cflags=tuple(f for f in _strings(got.get("extra_cuda_cflags"),
                                                                      "extra_cuda_cflags") if f))
        bad = [f for f in call.functions if not re.fullmatch(r"[A-Za-z_]\w*", f)]
        if bad:
            raise NotAdaptable(f"load_inline function name {bad[0]!r} is not a C++ identifier")
        calls.append(call)
    if not calls:
        raise NotAdaptable("no load_inline call: the answer compiles no code of its own")
    seen: dict[str, str] = {}
    for call in calls:
        for fn in call.functions:
            if fn in seen:
                raise NotAdaptable(f"function {fn!r} is named by two load_inline calls ({seen[fn]!r}, {call.name!r})")
            seen[fn] = call.name
    text = "\n".join(s for c in calls for s in (*c.cpp_sources, *c.cuda_sources))
    if "PYBIND11_MODULE" in text:
        raise NotAdaptable("the sources define their own PYBIND11_MODULE (load_inline's functions= does that)")
    return calls


def _offset(lines: list[str], lineno: int, col: int) -> int:
    """Character offset of an ast (1-based line, UTF-8 byte column) position."""
    before = sum(len(line) for line in lines[:lineno - 1])
    return before + len(lines[lineno - 1].encode()[:col].decode(errors="ignore"))


def rewrite_source(source: str) -> str:
    """The answer with every load_inline bound to the shim (`from ._kg_inline import ...`),
    edited in place: the rest of the text, comments and layout included, stays as written."""
    tree = parse_python(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch.utils.cpp_extension" \
                and any(a.name == "load_inline" for a in node.names):
            rest = [a for a in node.names if a.name != "load_inline"]
            new = [f"from ._kg_inline import load_inline" + (f" as {a.asname}" if a.asname else "")
                   for a in node.names if a.name == "load_inline"]
            if rest:
                new.append("from torch.utils.cpp_extension import " + ", ".join(
                    a.name + (f" as {a.asname}" if a.asname else "") for a in rest))
            indent = " " * node.col_offset
            edits.append((_offset(lines, node.lineno, node.col_offset),
                          _offset(lines, node.end_lineno, node.end_col_offset), f"\n{indent}".join(new)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load_inline":
            f = node.func
            edits.append((_offset(lines, f.lineno, f.col_offset), _offset(lines, f.end_lineno, f.end_col_offset),
                          SHIM_NAME))
    body = tree.body
    at = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str) else 0  # the docstring
    while at < len(body) and isinstance(body[at], ast.ImportFrom) and body[at].module == "__future__":
        at += 1
    where = _offset(lines, body[at - 1].end_lineno + 1, 0) if at and body[at - 1].end_lineno < len(lines) \
        else (len(source) if at else 0)
    text = source
    for begin, stop, repl in sorted(edits + [(where, where, f"from ._kg_inline import load_inline as {SHIM_NAME}\n")],
                                    key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:begin] + repl + text[stop:]
    return text if text.endswith("\n") else text + "\n"


__all__ = ["InlineCall", "NotAdaptable", "SHIM_NAME", "extract_source", "read_inline_calls", "rewrite_source",
           "sources_digest"]
