"""What every command's options share: the choices, the help polish and optional-value options.

- Choices are `Literal` types, so typer checks them and `--help` lists them.
- `polish_help(command)` runs once over the whole click tree before parsing: flags show as flags
  (typer 0.29 prints `--json <bool>`), repeatable options as `<str> (repeatable)`.
- `--json` / `--csv` take an optional FILE: bare, they print to stdout (as before); followed by a
  name ending in .json / .csv (or written `--json=FILE`), they write that file. The vendored click
  has no optional values, so `optional_values(command, argv)` inserts "-" (stdout) where none was given.
- upskill's run-log options (`--log-runs/--no-log-runs`, `--runs-dir`), shared by eval and generate,
  and what they do once the run is done (`write_run_logs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import typer

LevelChoice = Literal["auto", "text", "compile", "run"]
DeviceChoice = Literal["cuda", "cpu"]
SandboxChoice = Literal["auto", "local", "bwrap", "container"]
AnswerFormatChoice = Literal["kernel-builder", "kernelbench"]

LEVEL_HELP = ("auto: run with a CUDA device (or --device cpu), compile where nvcc is found, else text. "
              "run without a GPU (and without --device cpu) is an error, not a downgrade.")
DEVICE_HELP = "Where run checks execute. CPU figures are labelled CPU and never pooled with GPU ones."
SANDBOX_HELP = "Containment for model-written code (auto picks the strongest available)."
JSON_HELP = "JSON on stdout; --json FILE.json (or --json=FILE) writes it to FILE and still prints the table."
CSV_HELP = "CSV, one row per trial, on stdout; --csv FILE.csv (or --csv=FILE) writes FILE."
ExecutorChoice = Literal["local", "ray"]
EXECUTOR_HELP = ("Where grading runs: local (this machine, one run at a time per GPU) or ray (a Ray cluster's "
                 "nodes, see docs/scale.md; needs the [ray] extra).")
RAY_ADDRESS_HELP = "--executor ray: auto (the cluster this machine belongs to) or ray://HOST:PORT."
GPUS_HELP = "--executor local: GPUs to use, as CUDA_VISIBLE_DEVICES names them (0,1,...); default every visible one."
CACHE_DIR_HELP = "The content cache (compiles, references); per node unless this points at a shared folder."
#: Model-call options eval and benchmark share.
BASE_URL_HELP = "Any OpenAI-compatible server, e.g. http://localhost:8080/v1"
API_KEY_ENV_HELP = "Environment variable holding the key for --base-url (none needed for local servers)."
CONCURRENCY_HELP = "Model calls in flight at once."
TEMPERATURE_HELP = "Sampling temperature (stored with the run)."
CALL_TIMEOUT_HELP = "Seconds per model call."

#: upskill's default runs folder (its config.runs_dir).
DEFAULT_RUNS_DIR = Path("runs")
LOG_RUNS_HELP = ("Also write upskill's run logs: RUNS_DIR/<batch>/run_N/run_metadata.json and run_result.json "
                 "(one folder per model, run and arm) and batch_summary.json, RUNS_DIR ./runs unless --runs-dir. "
                 "Unlike upskill, off by default: kernelgrade keeps every run in its store anyway (answers and "
                 "checks included; runs show / runs export), so --no-log-runs only skips these extra folders.")
RUNS_DIR_HELP = ("Write upskill's run logs under DIR (implies --log-runs; an explicit --no-log-runs wins, as in "
                 "upskill). Written once the run has finished; `kernelgrade runs import DIR` reads them back.")


def log_runs_option(extra: str = ""):
    """`--log-runs/--no-log-runs` (None when neither is typed); `extra`: what the command adds to the help."""
    return typer.Option(None, "--log-runs/--no-log-runs", help=LOG_RUNS_HELP + extra)


def runs_dir_option():
    return typer.Option(None, "--runs-dir", metavar="DIR", help=RUNS_DIR_HELP)


def upskill_runs_dir(log_runs: bool | None, runs_dir: Path | None) -> Path | None:
    """Where upskill's run logs go, or None: --runs-dir or --log-runs asks for them, --no-log-runs not."""
    if log_runs is False:
        return None
    return runs_dir if runs_dir is not None else (DEFAULT_RUNS_DIR if log_runs else None)


def write_run_logs(store, run_ids: list[str], runs_dir: Path, say: Callable[[str], None]) -> list[Path]:
    """Each eval run's upskill run logs under runs_dir (harness.workflows.upskill_export), one line
    each. A batch folder already there (a run written before) is said, not overwritten."""
    from harness.common.errors import UserError
    from harness.workflows.upskill_export import write_upskill_logs

    written = []
    for run_id in run_ids:
        try:
            written.append(write_upskill_logs(store, run_id, runs_dir))
        except UserError as err:
            say(f"upskill run logs: not written: {err}")
            continue
        say(f"upskill run logs: {written[-1]}")
    return written


#: Options whose value is optional: bare means stdout ("-"); a value must end with this suffix.
OPTIONAL_VALUE = {"--json": ".json", "--csv": ".csv"}
STDOUT = "-"


def _is_group(command) -> bool:
    return hasattr(command, "commands") and isinstance(getattr(command, "commands"), dict)


def leaf_command(root, argv: list[str]):
    """The (sub)command `argv` names: follow tokens that are subcommand names."""
    current = root
    for token in argv:
        if _is_group(current) and token in current.commands:
            current = current.commands[token]
    return current


def optional_values(root, argv: list[str]) -> list[str]:
    """`argv` with "-" after each bare --json / --csv of a command where they take a value."""
    leaf = leaf_command(root, argv)
    takes_value = {o for p in getattr(leaf, "params", []) if not getattr(p, "is_flag", True)
                   for o in getattr(p, "opts", []) if o in OPTIONAL_VALUE}
    if not takes_value:
        return list(argv)
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token in takes_value:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if nxt is None or not (nxt == STDOUT or nxt.endswith(OPTIONAL_VALUE[token])):
                out.append(STDOUT)
    return out


def polish_help(command) -> None:
    """Flags without a type column; repeatable options as `<str> (repeatable)`. Walks every subcommand."""
    help_option = command.get_help_option(command.context_class(command))  # made once, then cached
    if help_option is not None:
        help_option.metavar = ""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
            continue
        if param.metavar is None and set(getattr(param, "opts", [])) & set(OPTIONAL_VALUE):
            param.metavar = "[FILE]"
            continue
        desc = getattr(param, "type_descriptor", None)
        if param.metavar is None and desc is not None and desc.is_list and not desc.is_choice \
                and hasattr(param, "opts") and any(o.startswith("-") for o in param.opts):
            inner = param.display_type(None).removeprefix("<list[").removesuffix("]>")
            param.metavar = f"<{inner}> (repeatable)"
    if _is_group(command):
        for sub in command.commands.values():
            polish_help(sub)


__all__ = ["AnswerFormatChoice", "CACHE_DIR_HELP", "CSV_HELP", "DEFAULT_RUNS_DIR", "DEVICE_HELP", "DeviceChoice",
           "EXECUTOR_HELP", "ExecutorChoice", "GPUS_HELP", "JSON_HELP", "LOG_RUNS_HELP", "RAY_ADDRESS_HELP", "LEVEL_HELP",
           "LevelChoice", "RUNS_DIR_HELP", "SANDBOX_HELP", "STDOUT", "SandboxChoice", "leaf_command", "log_runs_option",
           "optional_values", "polish_help", "runs_dir_option", "upskill_runs_dir", "write_run_logs"]
