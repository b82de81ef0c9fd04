"""Python parsed one thread at a time (harness/common/pyparse.py): CPython 3.11 can raise
SystemError when threads build ASTs at once, and answers are graded in threads."""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

from harness.common import pyparse

REPO = Path(__file__).resolve().parents[2]
#: Runs alone in a sandboxed child with no harness to import (a copy beside each reference).
ALONE = {REPO / "harness/kernelbench/runtime.py", REPO / "harness/common/pyparse.py"}


def test_a_parse_waits_for_the_one_in_progress() -> None:
    done = threading.Event()
    result: list[ast.Module] = []

    def parse() -> None:
        result.append(pyparse.parse_python("x = 1"))
        done.set()

    with pyparse._LOCK:  # a parse in progress
        threading.Thread(target=parse, daemon=True).start()
        assert not done.wait(0.3)
    assert done.wait(5) and isinstance(result[0].body[0], ast.Assign)


def test_the_harness_parses_python_only_through_it() -> None:
    direct = [f"{p.relative_to(REPO)}:{n}" for p in sorted((REPO / "harness").rglob("*.py")) if p not in ALONE
              for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"\bast\.parse\(", line)]
    assert direct == []
