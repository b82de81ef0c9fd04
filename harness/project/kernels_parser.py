"""The `kernels` package's own build.toml parser, behind one small typed result.

This is the ONLY module that touches the private `kernels._rust` API (pinned:
kernels==0.17.2 in pyproject.toml). Verified against 0.17.2:

- `Build.open(dir)` returns a `Build` (only `.general.backends` and
  `.all_kernel_depends(backend)` are exposed) or raises `ValueError` with
  "Cannot parse build configuration in `DIR`: <cause>".
- No `general.edition` and a valid legacy v4 file: accepted, upgraded to
  edition 5 in memory, and a warning is written by Rust `eprintln!` straight to
  file descriptor 2 (not Python's sys.stderr).
- No edition and only legacy v3 matches: "build.toml uses an unsupported legacy
  format; migrate it with `kernel-builder update-build`".
- Any edition other than 5: "unsupported build edition N; upgrade kernel-builder".

The parse runs in a child Python process: that is the only clean way to capture
the fd-2 warning without redirecting the harness's own stderr (checks may run
in threads), and a parser crash on a hostile file cannot take the harness down.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sandbox.limits import scrubbed_env

log = logging.getLogger(__name__)

PINNED_VERSION = "0.17.2"
"""The kernels version whose parser behaviour this module was verified against."""

Format = Literal["edition5", "legacy-v4", "legacy-v3", "newer", "unknown"]

# Runs in the child (python -I -S: no site, no user paths). It loads the compiled
# parser straight from its file, so the `kernels` package's __init__ (which pulls in
# much of the library) is not imported: ~0.1 s per parse instead of ~0.3 s.
# Prints one JSON object on stdout; fd 2 carries the parser's warnings.
_CHILD = r"""
import json, sys
import importlib.util
try:
    spec = importlib.util.spec_from_file_location("kernels._rust", sys.argv[1])
    rust = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rust)
except BaseException as err:
    sys.stdout.write(json.dumps({"internal": f"cannot load {sys.argv[1]}: {type(err).__name__}: {err}"}))
    raise SystemExit(0)
try:
    build = rust.Build.open(sys.argv[2])
    out = {"ok": True, "backends": [str(b).lower() for b in build.general.backends]}
except ValueError as err:
    out = {"ok": False, "error": str(err)}
except BaseException as err:  # a Rust panic arrives as pyo3's PanicException (a BaseException)
    out = {"ok": False, "error": f"parser crashed: {type(err).__name__}: {err}", "crashed": True}
sys.stdout.write(json.dumps(out))
"""

_PREFIX = re.compile(r"^Cannot parse build configuration in `[^`]*`:\s*")
_TOML_PREFIX = re.compile(r"^Cannot parse TOML in \S*build\.toml:\s*")
_NEWER = re.compile(r"unsupported build edition (\d+)")
_LEGACY_V3 = "unsupported legacy format"


class ParsedBuild(BaseModel):
    """What the kernels parser said about one project's build.toml."""

    ok: bool
    """The parser accepted the file (possibly after an in-memory upgrade)."""
    error: str | None = None
    """The parser's own message, with the directory prefix removed; None when ok."""
    warnings: list[str] = Field(default_factory=list)
    """Lines the parser wrote to stderr (e.g. the legacy v4 upgrade notice)."""
    edition: int | None = None
    """`general.edition` as written; None when absent or not an integer."""
    format: Format = "unknown"
    """edition5, legacy-v4 (no edition, upgraded in memory), legacy-v3 (refused),
    newer (an edition this parser does not know), or unknown (unparseable)."""
    backends: list[str] = Field(default_factory=list)
    """general.backends as the parser read them (lowercase), when ok."""
    parser_version: str = ""
    """The installed kernels version that parsed the file."""
    internal_error: str | None = None
    """Set when the parser could not be run at all (a harness fault, not the project's)."""


def installed_version() -> str:
    try:
        return importlib.metadata.version("kernels")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _rust_library() -> Path | None:
    """The compiled parser inside the installed kernels package (found without importing it)."""
    spec = importlib.util.find_spec("kernels")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(folder) / f"_rust{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _probe_edition(project_dir: Path) -> int | None:
    # Mirrors the parser's own EditionProbe: only general.edition, ignoring the rest.
    from harness.common.errors import UserError
    from harness.project.info import load_build_toml

    try:
        data = load_build_toml(project_dir)
    except UserError:
        return None
    general = data.get("general")
    edition = general.get("edition") if isinstance(general, dict) else None
    return edition if isinstance(edition, int) and not isinstance(edition, bool) else None


def _clean(message: str) -> str:
    message = _PREFIX.sub("", message.strip())
    return _TOML_PREFIX.sub("", message).strip()


def _classify(ok: bool, error: str | None, edition: int | None) -> Format:
    if ok:
        return "edition5" if edition == 5 else "legacy-v4"
    if error and _NEWER.search(error):
        return "newer"
    if error and _LEGACY_V3 in error:
        return "legacy-v3"
    return "unknown"


def parse_build(project_dir: Path, *, timeout_s: float = 60.0) -> ParsedBuild:
    """Parse `project_dir/build.toml` with the installed kernels parser."""
    version = installed_version()
    if version and version != PINNED_VERSION:
        log.warning("kernels %s installed; kernelgrade was verified against %s", version, PINNED_VERSION)
    edition = _probe_edition(project_dir)
    library = _rust_library()
    if library is None:
        return ParsedBuild(ok=False, edition=edition, parser_version=version, internal_error=(
            f"the kernels package (kernels._rust) is not installed: pip install kernels=={PINNED_VERSION}"))
    with tempfile.TemporaryDirectory(prefix="kg-parse-") as home:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _CHILD, str(library), str(project_dir.resolve())],
                capture_output=True, text=True, timeout=timeout_s, env=scrubbed_env(home), cwd=home,
            )
        except subprocess.TimeoutExpired:
            return ParsedBuild(ok=False, edition=edition, parser_version=version,
                               internal_error=f"kernels parser timed out after {timeout_s:.0f} s")
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return ParsedBuild(ok=False, edition=edition, parser_version=version,
                           internal_error=f"kernels parser exited {proc.returncode}: {tail[0]}")
    if "internal" in out:
        return ParsedBuild(ok=False, edition=edition, parser_version=version, internal_error=out["internal"])
    ok = bool(out.get("ok"))
    error = None if ok else _clean(str(out.get("error", "")))
    # The parser's warnings start with an emoji and two spaces; keep the words.
    warnings = [line.strip().lstrip("\u26a0\ufe0f").strip()
                for line in proc.stderr.splitlines() if line.strip()]
    return ParsedBuild(
        ok=ok, error=error, warnings=warnings, edition=edition,
        format=_classify(ok, error, edition), backends=list(out.get("backends", [])),
        parser_version=version,
    )


__all__ = ["PINNED_VERSION", "ParsedBuild", "installed_version", "parse_build"]
