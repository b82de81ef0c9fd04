"""Run `kernelgrade check PROJECT --level compile` over every kernel-builder project under DIR
and print one table: project, verdict, reason.

Usage:
    .venv/bin/python scripts/check_corpus.py DIR [--jobs 1] [--timeout 900] [--json OUT.json]
        [--level compile] [--kernelgrade "CMD ..."]   (another kernelgrade, e.g. an older checkout)

DIR is e.g. a checkout of huggingface/kernels (its examples/kernels/*) or of
kernels-community. A project is any folder holding a build.toml (folders named build,
result, node_modules, __pycache__, templates or starting with "." are not searched). Each check runs in its
own process through the `kernelgrade` next to this Python (the repo's .venv/bin), with
`--json`, so the verdict is read from the check results, not from the table:

    pass           every check within the level passed (exit 0) and compile ran
    no CUDA kernel exit 0 and compile was skipped because there is no CUDA kernel to build
    skip           exit 0 and compile was skipped for another reason (said in the reason)
    fail           a check failed (exit 1): the reason is the first failing check's
    error          usage/internal error (exit 2/3), a timeout, or output that is not JSON

A torch-binding compile takes about a minute and ~3 GB; keep --jobs 1 on small machines.
Exit code: 0 when the table was printed (whatever the verdicts), 2 for a bad DIR.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

SKIP_DIRS = {"build", "result", "node_modules", "__pycache__"}


def find_projects(root: Path) -> list[Path]:
    found: list[Path] = []
    for toml in sorted(root.rglob("build.toml")):
        rel = toml.parent.relative_to(root).parts
        if any(p in SKIP_DIRS or p.startswith(".") for p in rel):
            continue
        if "templates" in rel:  # kernel-builder's own `init` template, not a project
            continue
        found.append(toml.parent)
    return found


def kernelgrade_exe() -> str:
    exe = Path(sys.executable).parent / "kernelgrade"
    return str(exe) if exe.is_file() else "kernelgrade"


def _first(results: list[dict], status: str) -> dict | None:
    return next((r for r in results if r.get("status") == status), None)


def verdict(code: int | None, stdout: str, stderr: str) -> tuple[str, str]:
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        return "error", f"exit {code}: {tail[0]}"
    results = data.get("results", [])
    if failed := _first(results, "fail"):
        errors = [f for f in failed.get("findings", []) if f.get("severity") == "error"]
        detail = f" [{errors[0]['key']}]" if errors and errors[0].get("key") not in failed["reason"] else ""
        return "fail", f"{failed['name']}: {failed['reason']}{detail}"
    if broken := _first(results, "error"):
        return "error", f"{broken['name']}: {broken['reason']}"
    compile_ = next((r for r in results if r.get("name") == "compile"), None)
    if compile_ is None:
        return "error", "no compile result"
    if compile_["status"] == "skip":
        kind = "no CUDA kernel" if "no CUDA kernel" in compile_["reason"] else "skip"
        return kind, f"compile: {compile_['reason']}"
    warnings = sum(f.get("severity") == "warning" for r in results for f in r.get("findings", []))
    return "pass", compile_["reason"] + (f" ({warnings} warnings)" if warnings else "")


def check_one(project: Path, timeout: float, level: str, exe: list[str]) -> dict:
    cmd = [*exe, "check", str(project), "--level", level, "--json"]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"project": str(project), "verdict": "error", "reason": f"timed out after {timeout:g} s",
                "exit_code": None, "wall_s": round(time.monotonic() - start, 1)}
    kind, reason = verdict(proc.returncode, proc.stdout, proc.stderr)
    return {"project": str(project), "verdict": kind, "reason": reason, "exit_code": proc.returncode,
            "wall_s": round(time.monotonic() - start, 1)}


STYLE = {"pass": "green", "fail": "red", "error": "magenta", "no CUDA kernel": "cyan", "skip": "yellow"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder to search for build.toml projects")
    parser.add_argument("--jobs", type=int, default=1, help="projects checked at once (default 1)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per project (default 900)")
    parser.add_argument("--level", default="compile", help="check level (default compile)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here as JSON")
    parser.add_argument("--kernelgrade", default=None,
                        help="command to run instead of the kernelgrade next to this Python (split on spaces)")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir}: no such folder", file=sys.stderr)
        return 2
    projects = find_projects(args.dir)
    exe = args.kernelgrade.split() if args.kernelgrade else [kernelgrade_exe()]
    console = Console(highlight=False, stderr=True)
    console.print(f"{len(projects)} projects under {args.dir}")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(check_one, p, args.timeout, args.level, exe) for p in projects]
        rows = []
        for p, fut in zip(projects, futures):
            rows.append(fut.result())
            console.print(escape(f"  {p.relative_to(args.dir)}: {rows[-1]['verdict']} ({rows[-1]['wall_s']} s)"))
    table = Table(title=f"kernelgrade check --level {args.level}: {args.dir}", title_justify="left")
    for col in ("project", "verdict", "reason"):
        table.add_column(col, overflow="fold")
    for row in rows:
        name = str(Path(row["project"]).relative_to(args.dir)) or Path(row["project"]).name
        style = STYLE.get(row["verdict"], "white")
        table.add_row(escape(name), f"[{style}]{row['verdict']}[/{style}]", escape(row["reason"]))
    Console(highlight=False, width=max(120, Console().width)).print(table)
    counts = {k: sum(r["verdict"] == k for r in rows) for k in STYLE}
    print(", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
