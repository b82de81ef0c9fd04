"""The `kernelgrade` command. Each command lives in harness/cli/<name>.py and
exposes `register(app)`; this module only wires them and maps errors to exit codes.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console

from harness.common.errors import KernelgradeError
from sandbox.errors import SandboxUnavailable

app = typer.Typer(
    name="kernelgrade",
    help="Write and evaluate agent skills for GPU kernel work, graded by compiling and running.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Command modules, in the order `--help` lists them.
COMMAND_MODULES = [
    "harness.cli.eval",
    "harness.cli.benchmark",
    "harness.cli.check",
    "harness.cli.validate",
    "harness.cli.runs",
    "harness.cli.rescore",
    "harness.cli.serve_local",
    "harness.cli.generate",
    "harness.cli.plot",
    "harness.cli.cases",
    "harness.cli.list_skills",
]

# soft_wrap: an error stays one line even when stderr is a pipe.
err_console = Console(stderr=True, soft_wrap=True)


_registered: list[str] = []


def _register_all() -> None:
    if _registered:
        return  # main() may run many times in one process (tests)
    _registered.append("done")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue  # that command has not been written yet
            raise
        module.register(app)


def build_command():
    """The click command tree of every command, with --help polished (harness/cli/options.py)."""
    import typer.main

    from harness.cli.options import polish_help

    _register_all()
    command = typer.main.get_command(app)
    polish_help(command)
    return command


def _click_classes() -> tuple[tuple[type, ...], tuple[type, ...]]:
    import click

    usage: list[type] = [click.ClickException]
    abort: list[type] = [click.exceptions.Abort]
    try:
        from typer import _click as vendored

        usage.append(vendored.exceptions.ClickException)
        abort.append(vendored.exceptions.Abort)
    except (ImportError, AttributeError):
        pass
    return tuple(usage), tuple(abort)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from harness.common.config import load_dotenv_files

    load_dotenv_files()
    from harness.cli.options import optional_values

    command = build_command()
    args = optional_values(command, list(sys.argv[1:] if argv is None else argv))
    try:
        # standalone_mode=False: click returns typer.Exit's code instead of raising it
        rc = command(args=args, standalone_mode=False, prog_name="kernelgrade")
        if isinstance(rc, int):
            return rc
    except (KernelgradeError, SandboxUnavailable) as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        return err.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as ex:
        return ex.exit_code
    except SystemExit as ex:  # click's usage errors
        return int(ex.code or 0)
    except Exception as err:
        # Usage errors: typer >= 0.29 raises its vendored click's classes, older typer click's.
        usage, abort = _click_classes()
        if isinstance(err, usage):
            err.show()  # type: ignore[attr-defined]
            return 2
        if isinstance(err, abort):
            err_console.print("interrupted")
            return 130
        raise
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
