"""`kernelgrade cases ...`: make case files from other benchmarks.

  cases import-kernelbench KERNELBENCH_DIR --level 1 --problems 1-40,77 -o cases/kernelbench-l1.json
  cases adapt-kernelbench ANSWER.py --reference cases/kernelbench-l1/<op>/reference.py -o PROJECT
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from harness.cli.options import DeviceChoice

cases_app = typer.Typer(help="Make kernel cases from other benchmarks (KernelBench).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cases_app, name="cases")


@cases_app.command("import-kernelbench")
def import_kernelbench_cmd(
    kernelbench_dir: Path = typer.Argument(..., metavar="KERNELBENCH_DIR",
                                           help="A KernelBench checkout (or its KernelBench/ folder)."),
    level: str = typer.Option("1", "--level", help="Levels, e.g. 1 or 1,2,3."),
    problems: str = typer.Option("", "--problems", help="Problem numbers, e.g. 1-40,77 (default: all)."),
    out: Path = typer.Option(..., "--out", "-o", help="The case file to write; references go in the folder "
                                                      "of the same name beside it."),
    dtypes: str = typer.Option("float32", "--dtypes", help="Precisions, e.g. float32,bfloat16 "
                                                           "(KernelBench's default is float32)."),
    budget_ms: float = typer.Option(50.0, "--cpu-budget-ms", help="Time of one CPU reference call the "
                                                                   "CPU shapes are scaled to (one core)."),
    max_mib: float = typer.Option(64.0, "--cpu-max-mib", help="Bytes one CPU call may read and write, "
                                                                "in MiB (inputs, parameters, outputs)."),
    baseline: str = typer.Option("eager", "--baseline", help="eager | compile: what the cases' speedups are "
                                 "timed against (KernelBench reports both: eager PyTorch, and torch.compile). "
                                 "Written into each case as kernel.baseline."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every problem not imported."),
) -> None:
    """Import KernelBench problems as kernel cases with generated references.

    Every problem selected and not imported is counted by reason (and listed with --verbose,
    and always in the case file's "kernelbench.not_imported"). Exit codes: 0 at least one
    problem imported, 2 bad input or nothing importable.
    """
    from harness.kernelbench.analyze import REASONS
    from harness.kernelbench.importer import import_kernelbench, parse_numbers

    if baseline not in ("eager", "compile"):
        raise typer.BadParameter(f"{baseline!r}: eager or compile", param_hint="--baseline")
    console = Console(highlight=False, stderr=True, soft_wrap=True)
    levels = parse_numbers(level, what="--level") or [1]
    with console.status("importing") as status:
        result = import_kernelbench(kernelbench_dir, out, levels=levels,
                                    numbers=parse_numbers(problems, what="--problems"),
                                    dtypes=[d.strip() for d in dtypes.split(",") if d.strip()],
                                    budget_ms=budget_ms, max_cpu_bytes=int(max_mib * 2 ** 20),
                                    baseline=baseline, progress=lambda text: status.update(f"importing {escape(text)}"))
    out_console = Console(highlight=False, soft_wrap=True)
    for line in result.summary_lines():
        out_console.print(escape(line))
    if verbose:
        for r in result.refused:
            out_console.print(f"  not imported: level {r.level} {escape(r.name)}: {REASONS.get(r.reason, r.reason)}"
                              f" ({escape(r.detail)})")
    slow = sorted(result.seconds.items(), key=lambda kv: -kv[1])[:1]
    took = sum(result.seconds.values())
    out_console.print(f"wrote {escape(str(result.cases_path))} ({len(result.imported)} cases) and references "
                      f"under {escape(str(result.references))}/ in {took:.1f} s"
                      + (f" (slowest {escape(slow[0][0])}: {slow[0][1]:.1f} s)" if slow else ""))


@cases_app.command("adapt-kernelbench")
def adapt_kernelbench_cmd(
    answer: Path = typer.Argument(..., metavar="ANSWER", help="A KernelBench answer: a .py file defining "
                                                               "ModelNew, or a model's reply holding one."),
    reference: Path = typer.Option(..., "--reference", help="The imported problem's reference.py."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the kernel-builder project (replaced)."),
    device: DeviceChoice = typer.Option("cpu", "--device", help="cpu (the reference's TEST_SHAPES) or cuda (its "
                                        "SHAPES)."),
) -> None:
    """Turn a KernelBench-format answer (ModelNew with load_inline) into a kernel-builder project
    that `kernelgrade check PROJECT --reference REF [--device cpu]` grades with kernelgrade's
    runner and anti-cheat checks. Exit codes: 0 written, 2 the answer cannot be adapted."""
    from harness.common.errors import UserError
    from harness.kernelbench.adapt import AdaptRefused, adapt_answer

    try:
        text = answer.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"{answer}: cannot read: {err.strerror}") from None
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: expected cpu or cuda")
    got = adapt_answer(text, reference, out, device=device)
    if isinstance(got, AdaptRefused):
        raise UserError(f"{answer}: {got.reason}")
    Console(highlight=False, soft_wrap=True).print(f"wrote {escape(str(out))} (package {escape(got.package)}, "
                                   f"{len(got.functions)} load_inline function(s): {escape(', '.join(got.functions))})")


__all__ = ["register"]
