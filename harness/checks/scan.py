"""The `scan` check: read a kernel project's sources for known tricks (REFERENCE.md §7),
without compiling or running anything.

It complements the dynamic rules of the run check (harness/execute/judge.py): a trick that the
sources show plainly (patching torch.allclose or the timer, calling the op under test) fails
here before any of the project's code runs. Many cheats are visible only when the code runs (a kernel
that writes zeros, skips rows or mutates its input); those are the run check's job.

What is scanned: the C/C++/CUDA sources listed in build.toml (with the project headers they
#include) and every .py file of the Python package torch-ext/<name>/. Comments are removed
first, so prose that names a trick is not a finding.
- C/C++/CUDA: regexes on the text with comments blanked, and string literals blanked
  unless a rule needs them (`strings=True`, e.g. "aten::softmax" handed to the dispatcher).
- Python: the file is parsed (never imported) into events, one per line of the form
  "<kind> <dotted name>" with import aliases resolved (`import torch.nn.functional as F`
  makes `F.softmax(x)` the event "call torch.nn.functional.softmax"); rules are regexes on
  those events. Kinds: import, assign (an attribute or item assigned or deleted), setattr,
  call, ref (a name or attribute read), arg (a call's first argument when it is a string),
  string (other string constants; docstrings are left out), global, module-state (a
  module-level dict/list/set), default-mutable, and "call @" for the matmul operator.
  Names defined by the package itself, and its relative imports, start with ".".

Severity: error only for what has no use but against the grade: calling the op under test,
replacing the instruments grading uses inside the candidate's process (clocks, torch's checkers,
profiler and dispatch hooks, tensor methods, the CUDA runtime's timing calls), hooks that run
inside other code (settrace, setprofile, audit hooks, gc callbacks), and reaching another
process (ptrace, process_vm_*, /proc/<pid>). Everything honest kernel packages are seen doing
(kernels-community: environment switches, on-disk caches and package data, JIT compiles through
subprocess, code generation with exec, compatibility shims on torch.distributed or triton,
frame and heap inspection for logging) is a warning a reviewer should look at. The defence
against reaching the checker's or the reference's data is the trust boundary (the run check's
sandboxed child holds neither), not this scan.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

from harness.checks.base import CheckContext
from harness.checks.scan_rules import OP_ALIASES, RULES, Rule, replaced_rules
from harness.checks.scan_source import (
    Hit,
    python_events,
    scan_cpp,
    scan_python,
    strip_c,
)
from harness.common.errors import UserError
from harness.common.results import CheckResult, Finding
from harness.inputs.reference import reference_dir, resolve_reference_path
from harness.project.info import read_project
from harness.project.sources import C_SUFFIXES, all_sources, inside, listed_sources
from harness.common.pyparse import parse_python

log = logging.getLogger(__name__)

NAME = "scan"
MAX_FILE_BYTES = 2_000_000
MAX_FINDINGS = 60


# --- The project ------------------------------------------------------------------------



def _reference_names(path: Path | None) -> list[str]:
    """API and TORCH_OPS read from a reference.py's literals (it is never imported here: a
    project's own reference.py is untrusted), plus its op folder for kernels_reference/."""
    if path is None:
        return []
    names: list[str] = []
    if path.resolve().parent.parent == reference_dir().resolve():
        names.append(path.resolve().parent.name)
    try:
        tree = parse_python(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return names
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("API", "TORCH_OPS"):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            names.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return names


def replaced_names(ctx: CheckContext) -> tuple[list[str], str]:
    """The op under test's names, and where they came from ('' when none is known)."""
    spec = ctx.case.kernel if ctx.case is not None else None
    names: list[str] = [spec.op, spec.api_name] if spec is not None else []
    op = spec.op if spec is not None else ctx.options.op
    try:
        # As the run check finds it; a reference.py in a model's answer is never used.
        ref = resolve_reference_path(explicit=ctx.options.reference, op=op,
                                     project_dir=ctx.project_dir if ctx.case is None else None,
                                     case_reference=spec.reference if spec is not None else None)
    except UserError:
        ref = None  # a case op without kernels_reference/<op>: the case's names still apply
    names.extend(_reference_names(ref))
    for name in list(names):
        names.extend(OP_ALIASES.get(name, ()))
    names = list(dict.fromkeys(n for n in names if n))
    source = str(ref) if ref is not None else ("the case" if spec is not None else "")
    return names, source


def scan_project(root: Path, replaced: list[str]) -> tuple[list[Hit], list[Finding], int]:
    """(hits, notes, files scanned) for the project at `root`."""
    notes: list[Finding] = []
    try:
        info = read_project(root)
        c_files, py_files = listed_sources(info, lambda text: strip_c(text)[1])
        package: Path | None = info.python_package_dir
        has_kernels = bool(info.kernels)
    except UserError as err:
        notes.append(Finding(severity="note", key="build.toml",
                             reason=f"unreadable ({err}); every source file in the project was scanned"))
        c_files, py_files = all_sources(root)
        package, has_kernels = None, False
    rules = [*RULES, *replaced_rules(replaced)]
    hits: list[Hit] = []
    uses_own_ops = False
    for path in [*c_files, *py_files]:
        rel = path.relative_to(root).as_posix() if inside(path, root) else path.name
        if path.stat().st_size > MAX_FILE_BYTES:
            notes.append(Finding(severity="warning", key=rel, reason=f"over {MAX_FILE_BYTES} bytes: not scanned"))
            continue
        src = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix in C_SUFFIXES:
            hits.extend(scan_cpp(src, rel, rules))
            continue
        depth = len(path.relative_to(package).parts) - 1 if package is not None and inside(path, package) else 0
        try:
            events = python_events(src, package_depth=depth)
        except SyntaxError as err:
            notes.append(Finding(severity="warning", key=f"{rel}:{err.lineno or 0}",
                                 reason=f"not valid Python ({err.msg}): not scanned"))
            continue
        hits.extend(scan_python(src, rel, rules, events))
        uses_own_ops |= any(re.match(r"(call|ref) (\._ops\b|torch\.ops\.(?!aten\b))", e) for _, e in events)
    if has_kernels and package is not None and package.is_dir() and py_files and not uses_own_ops:
        rel = package.relative_to(root).as_posix()
        notes.append(Finding(severity="warning", key=rel,
                             reason="no_own_code: the Python package never uses its compiled ops "
                                    "(ops from ._ops): its API does not run the project's kernels"))
    return _dedupe(hits), notes, len(c_files) + len(py_files)


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """One hit per (family, file, line), the most severe first; errors before warnings."""
    rank = {"error": 0, "warning": 1, "note": 2}
    # A line that calls the op under test needs no second finding saying it computes in PyTorch.
    replaced_at = {(h.path, h.line) for h in hits if h.rule.family == "torch_op"}
    hits = [h for h in hits if not (h.rule.family == "pytorch_compute" and (h.path, h.line) in replaced_at)]
    best: dict[tuple[str, str, int], Hit] = {}
    for hit in hits:
        key = (hit.rule.family, hit.path, hit.line)
        if key not in best or rank[hit.rule.severity] < rank[best[key].rule.severity]:
            best[key] = hit
    return sorted(best.values(), key=lambda h: (rank[h.rule.severity], h.path, h.line, h.rule.family))


def check_scan(ctx: CheckContext) -> CheckResult:
    if ctx.project_dir is None or not (ctx.project_dir / "build.toml").is_file():
        return CheckResult.skip(NAME, "no project to scan")
    replaced, source = replaced_names(ctx)
    hits, notes, n_files = scan_project(ctx.project_dir, replaced)
    if not replaced:
        notes.append(Finding(severity="note", key="torch_op",
                             reason="no reference op (case, --op, --reference or reference.py): "
                                    "calls to the op under test were not looked for"))
    findings = [h.finding() for h in hits]
    shown = findings[:MAX_FINDINGS]
    if len(findings) > MAX_FINDINGS:
        shown.append(Finding(severity="note", key="scan",
                             reason=f"{len(findings) - MAX_FINDINGS} more findings not shown"))
    shown.extend(notes)
    n_err = sum(h.rule.severity == "error" for h in hits)
    n_warn = sum(h.rule.severity == "warning" for h in hits) + sum(f.severity == "warning" for f in notes)
    metrics = {"files": n_files, "errors": n_err, "warnings": n_warn,
               "replaced_ops": ",".join(replaced) or None, "replaced_from": source or None}
    ok = f"no known trick in {n_files} files" + (f" ({n_warn} warnings)" if n_warn else "")
    return CheckResult.from_findings(NAME, shown, ok_reason=ok, metrics=metrics)


__all__ = ["OP_ALIASES", "RULES", "Rule", "check_scan", "python_events", "replaced_names", "replaced_rules",
           "scan_project", "strip_c"]
