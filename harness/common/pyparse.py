"""Python source parsed to an AST behind one lock.

Answers are graded in threads (eval's workers), and several checks parse the answer's Python.
CPython 3.11 can fail then with "SystemError: AST constructor recursion depth mismatch" when two
threads build ASTs at once: seen in this project's tests. Parsing is fast; one at a time costs nothing
that matters. (harness/kernelbench/runtime.py parses on its own: it runs alone in a sandboxed
child that has no harness to import.)
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse, one thread at a time (raises SyntaxError as ast.parse does)."""
    with _LOCK:
        return ast.parse(source, filename=filename)
