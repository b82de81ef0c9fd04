"""Files out of a model's answer: fenced code blocks that carry a relative path.

Where a block's path may come from, in order of precedence:
1. the fence's info string: ```` ```cuda path=a/b.cu ```` (the form the prompt asks for),
   `file=`, `filename=`, `title="..."`, a bare path token (```` ```cpp torch-ext/x.cpp ````,
   ```` ```build.toml ````) or `lang:path`;
2. the block's first line: `// file: path`, `# file: path`, `// path`, `<!-- file: path -->`
   (the marker line is not written: `# file:` would break a .cu file);
3. the line just above the block: a heading, bold or backticked path (```### `build.toml` ```,
   `**build.toml**:`, `File: x.cu`), or a short line ending in ":" with one backticked path.

Blocks without a path are commentary (a note). Each path is checked before anything is
written (absolute, `..`, backslashes, drive letters, control characters, empty); a path
given twice keeps the later block (models revise files further down), with a warning.
When build.toml sits one folder down and every file is under that folder, the folder is
stripped so that the project root is the workspace root (a note says so).

Writing goes through directory file descriptors opened with O_NOFOLLOW and files created
with O_EXCL, so nothing can be written outside the workspace even if a symlink appears in it.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from harness.common.results import Finding

log = logging.getLogger(__name__)

MAX_FILES = 64
MAX_BYTES = 2_000_000
_MAX_COMPONENT = 255
_MAX_PATH = 1024
_MAX_MARKER_LINE = 300
"""Longest first line or line above a block that is read for a path (and fed to a regex)."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_KEYED = re.compile(r"""(?P<key>[A-Za-z_-]+)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S+))""")
_PATH_KEYS = {"path", "file", "filename", "filepath", "file_path", "title", "name"}
# A token that looks like a file path: has a folder or an extension, no spaces.
_PATHISH = re.compile(r"^(?:[^\s`*]+/[^\s`*]*|[^\s`*/]*[^\s`*/.]\.[A-Za-z][A-Za-z0-9_+-]{0,11})$")
_FILE_NAME = re.compile(r"^[^\s`*/]*[^\s`*/.]\.[A-Za-z][A-Za-z0-9_+-]{0,11}$")
_FIRST_LINE = re.compile(
    r"^\s*(?://+|#+|--|/\*+|<!--|;+)\s*(?:(?:file|filename|path|filepath)\s*:\s*)?"
    r"(?P<path>[^\s*]+?)\s*(?:\*+/|-->)?\s*$",
    re.IGNORECASE,
)
_FIRST_LINE_KEYED = re.compile(r"(?:file|filename|path|filepath)\s*:", re.IGNORECASE)
_ABOVE_DECOR = re.compile(
    r"^\s*(?:#{1,6}\s+)?(?:[-*+]\s+|\d+[.)]\s+)?"  # heading marks, a list bullet or number
    r"(?:\*\*|__)?\s*(?:(?:file|filename|path)\s*:\s*)?(?:\*\*|__)?\s*"
    r"`?(?P<path>[^\s`*]+)`?\s*(?:\*\*|__)?\s*:?\s*(?:\*\*|__)?\s*$",
    re.IGNORECASE,
)
_BACKTICKED = re.compile(r"`([^`\s]+)`")
_HEADING_EXTS = {"cu", "cuh", "cpp", "cc", "c", "h", "hpp", "hh", "py", "toml", "txt", "md", "json", "cmake"}


class Extraction(BaseModel):
    """What extract_to_workspace wrote, and why anything was left out."""

    files: list[str] = Field(default_factory=list)
    """Relative paths written, in answer order."""
    findings: list[Finding] = Field(default_factory=list)
    """Rejected paths and limits (error), duplicates (warning), blocks without a path (note)."""
    total_bytes: int = 0
    """UTF-8 bytes written."""


@dataclass
class _Block:
    info: str
    lines: list[str]
    above: list[str]
    """Up to two non-blank lines above the fence (nearest last), within the prose before it."""
    line_no: int
    closed: bool


def _looks_like_path(token: str) -> bool:
    """A bare token (no `path=` / `file:` key) counts as a path only if its file name has
    an extension: "Build/Install" or "and/or" in a heading is prose, "a/b.cu" is a file."""
    return (bool(token) and len(token) <= _MAX_PATH and bool(_PATHISH.match(token))
            and bool(_FILE_NAME.match(token.rsplit("/", 1)[-1])))


def _iter_blocks(text: str) -> list[_Block]:
    """Fenced blocks, CommonMark-style: a closing fence uses the same character, is at
    least as long, and has no info string. Indented fences (in list items) are accepted
    and their indentation is removed from the content lines."""
    lines = text.split("\n")
    blocks: list[_Block] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m["fence"][0] == "`" and "`" in m["info"]):
            prose.append(lines[i])
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"].expandtabs(4))
        above = [p for p in prose if p.strip()][-2:]
        start = i
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            c = _FENCE.match(lines[i])
            if c and c["fence"][0] == fence[0] and len(c["fence"]) >= len(fence) and not c["info"].strip():
                closed = True
                break
            line = lines[i]
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            i += 1
        if not closed:
            while body and not body[-1].strip():
                body.pop()
        blocks.append(_Block(info=m["info"].strip(), lines=body, above=above, line_no=start + 1, closed=closed))
        prose = []
        i += 1
    return blocks


def _path_from_info(info: str) -> str | None:
    if len(info) > _MAX_MARKER_LINE:
        return None
    info = info.replace("{", " ").replace("}", " ")  # pandoc-style {.cuda path=...}
    for m in _KEYED.finditer(info):
        if m["key"].lower() in _PATH_KEYS:
            value = m["dq"] if m["dq"] is not None else m["sq"] if m["sq"] is not None else m["bare"]
            return value.strip()
    rest = _KEYED.sub(" ", info).split()
    for token in rest:
        if ":" in token and not re.match(r"^[A-Za-z]:[\\/]", token):
            candidate = token.partition(":")[2]  # ```python:pkg/x.py
            if candidate and _looks_like_path(candidate):
                return candidate
        if _looks_like_path(token):
            return token
        # A path given as an absolute or parent path still counts as "a path" so it is rejected.
        if token.startswith(("/", "../", "~/")) or re.match(r"^[A-Za-z]:[\\/]", token) or "\\" in token:
            return token
    return None


def _path_from_first_line(lines: list[str]) -> str | None:
    if not lines:
        return None
    first = lines[0]
    if len(first) > _MAX_MARKER_LINE:
        return None
    m = _FIRST_LINE.match(first)
    if m is None:
        return None
    candidate = m["path"]
    # `// file: x` may name anything; a bare `// x` comment only counts if it looks like a path.
    if _FIRST_LINE_KEYED.search(first) or _looks_like_path(candidate):
        return candidate
    return None


def _path_from_above(above: list[str]) -> str | None:
    if not above:
        return None
    nearest = above[-1]
    if len(nearest) > _MAX_MARKER_LINE:  # also keeps the regexes away from huge lines
        return None
    m = _ABOVE_DECOR.match(nearest)
    if m and _looks_like_path(m["path"].rstrip(":")):
        return m["path"].rstrip(":")
    stripped = nearest.strip()
    heading = stripped.startswith("#") or (stripped.startswith("**") and stripped.rstrip(":").endswith("**"))
    # "Here is `torch-ext/torch_binding.cpp`:" or "### 3. The kernel (`relu_cuda/relu.cu`)":
    # one backticked path on a heading or a short line ending in ':'.
    if heading or stripped.endswith(":"):
        found = [t for t in _BACKTICKED.findall(nearest) if _looks_like_path(t)]
        if len(found) == 1:
            return found[0]
    # "### CUDA kernel: relu_cuda/relu.cu" - a heading with one bare source-file name.
    if heading and not _BACKTICKED.search(nearest):
        found = [t for t in (w.strip("()[],:;*") for w in stripped.split())
                 if _looks_like_path(t) and t.rsplit(".", 1)[-1].lower() in _HEADING_EXTS]
        if len(found) == 1:
            return found[0]
    return None


def check_relpath(raw: str) -> tuple[str | None, str | None]:
    """(normalised path, None) or (None, why it is refused)."""
    if not raw or not raw.strip():
        return None, "empty path"
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in raw):
        return None, "control or invisible characters in the path"
    if "\\" in raw:
        return None, "backslash in the path (use / separators)"
    if re.match(r"^[A-Za-z]:", raw):
        return None, "a drive letter: the path must be relative to the project root"
    if raw.startswith("/"):
        return None, "absolute path: must be relative to the project root"
    if raw.startswith("~"):
        return None, "home-relative path: must be relative to the project root"
    if raw.endswith("/"):
        return None, "names a folder, not a file"
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "'..' component: the path would leave the project"
    if not parts:
        return None, "empty path"
    if any(len(p.encode()) > _MAX_COMPONENT for p in parts) or len(raw) > _MAX_PATH:
        return None, "path too long"
    if any(p.strip() != p or not p.strip() for p in parts):
        return None, "a path component starts or ends with whitespace"
    return "/".join(parts), None


def _strip_wrapper_folder(files: dict[str, str], findings: list[Finding]) -> dict[str, str]:
    if "build.toml" in files:
        return files
    tomls = [p for p in files if p.endswith("/build.toml")]
    if len(tomls) != 1:
        return files
    prefix = tomls[0][: -len("build.toml")]
    if not all(p.startswith(prefix) for p in files):
        return files
    findings.append(Finding(severity="note", key=prefix.rstrip("/"),
                            reason=f"every file is under {prefix!r} with build.toml: that folder is the project root"))
    return {p[len(prefix):]: body for p, body in files.items()}


def extract_files(text: str) -> tuple[dict[str, str], list[Finding]]:
    """Relative path -> content for every block that names a valid path, plus findings."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    files: dict[str, str] = {}
    origin: dict[str, int] = {}
    findings: list[Finding] = []
    for block in _iter_blocks(text):
        where = f"block at line {block.line_no}"
        lines = block.lines
        raw = _path_from_info(block.info)
        first = _path_from_first_line(lines)
        if raw is not None:
            if first is not None:
                lines = lines[1:]
                a, b = check_relpath(first)[0] or first, check_relpath(raw)[0] or raw
                if not (a.endswith("/" + b) or b.endswith("/" + a) or a == b):
                    findings.append(Finding(severity="warning", key=raw, reason=(
                        f"{where}: fence says {raw!r}, first line says {first!r}; using the fence")))
        elif first is not None:
            raw, lines = first, lines[1:]
        else:
            raw = _path_from_above(block.above)
        if raw is None:
            findings.append(Finding(severity="note", key=where,
                                    reason="code block without a path: not written"))
            continue
        path, why = check_relpath(raw)
        if path is None:
            findings.append(Finding(severity="error", key=repr(raw)[1:-1] or "(empty)", reason=f"{where}: {why}"))
            continue
        if not block.closed:
            findings.append(Finding(severity="warning", key=path,
                                    reason=f"{where}: the code block is never closed (answer cut off?)"))
        if path in files:
            findings.append(Finding(severity="warning", key=path, reason=(
                f"given twice (blocks at lines {origin[path]} and {block.line_no}): the later one is used")))
            del files[path]  # keep answer order: the file moves to where its final version is
        files[path] = "\n".join(lines) + ("\n" if lines else "")
        origin[path] = block.line_no
    return _strip_wrapper_folder(files, findings), findings


def _open_dir(name: str, dir_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _write_one(root_fd: int, path: str, data: bytes) -> None:
    """Create `path` under root_fd, descending one directory fd at a time.

    O_NOFOLLOW on every directory and O_EXCL|O_NOFOLLOW on the file: a symlink anywhere
    on the way, or any file already there, is an OSError rather than a write elsewhere.
    """
    *folders, name = path.split("/")
    fds: list[int] = []
    try:
        current = root_fd
        for folder in folders:
            try:
                os.mkdir(folder, 0o755, dir_fd=current)
            except FileExistsError:
                pass
            current = _open_dir(folder, current)
            fds.append(current)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=current)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    finally:
        for opened in fds:
            os.close(opened)


def _why(err: OSError, root_fd: int, path: str) -> str:
    # O_NOFOLLOW|O_DIRECTORY reports a symlinked folder as ENOTDIR: look at what is there.
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        try:
            st = os.lstat("/".join(parts[:i]), dir_fd=root_fd)
        except OSError:
            break
        if stat.S_ISLNK(st.st_mode):
            return f"{'/'.join(parts[:i])!r} in the workspace is a symlink: refused (not followed)"
    if err.errno == errno.ELOOP:
        return "a symlink in the workspace is on the way: refused"
    if err.errno == errno.EEXIST:
        return "something already exists at this path in the workspace: refused (not overwritten)"
    if err.errno == errno.ENOTDIR:
        return "a parent of this path is a file, not a folder"
    return f"cannot write: {err.strerror}"


def write_files(dest: Path, files: dict[str, str], *, max_files: int = MAX_FILES,
                max_bytes: int = MAX_BYTES) -> Extraction:
    """Write already-checked relative paths under the existing real folder `dest`."""
    result = Extraction()
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    over_files: list[str] = []
    try:
        for path, body in files.items():
            path_ok, why = check_relpath(path)
            if path_ok is None:  # write_files is public: never trust the caller's paths either
                result.findings.append(Finding(severity="error", key=path, reason=why or "bad path"))
                continue
            if len(result.files) >= max_files:
                over_files.append(path_ok)
                continue
            data = body.encode("utf-8", errors="surrogatepass")
            if result.total_bytes + len(data) > max_bytes:
                result.findings.append(Finding(severity="error", key=path_ok, reason=(
                    f"{len(data)} bytes would take the answer past the {max_bytes}-byte limit: not written")))
                continue
            try:
                _write_one(root_fd, path_ok, data)
            except OSError as err:
                result.findings.append(Finding(severity="error", key=path_ok, reason=_why(err, root_fd, path_ok)))
                continue
            result.files.append(path_ok)
            result.total_bytes += len(data)
    finally:
        os.close(root_fd)
    if over_files:
        shown = ", ".join(over_files[:5]) + (", ..." if len(over_files) > 5 else "")
        result.findings.append(Finding(severity="error", key="(answer)", reason=(
            f"{len(over_files)} files beyond the {max_files}-file limit were not written: {shown}")))
    return result


def _prepare_dest(dest: Path) -> None:
    """dest must not exist, or be an empty real folder; its parents belong to the harness."""
    if dest.is_symlink():
        raise FileExistsError(f"{dest}: workspace is a symlink; refusing to extract into it")
    if dest.exists():
        if not dest.is_dir():
            raise FileExistsError(f"{dest}: workspace exists and is not a folder")
        if any(dest.iterdir()):
            raise FileExistsError(f"{dest}: workspace is not empty; extraction needs a fresh folder")
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.mkdir(mode=0o755)


def extract_to_workspace(text: str, dest: Path, *, max_files: int = MAX_FILES,
                         max_bytes: int = MAX_BYTES) -> Extraction:
    """Extract the answer's files into the fresh folder `dest` (created here).

    Raises FileExistsError when `dest` is not fresh (a harness bug, not the answer's fault).
    """
    dest = Path(dest)
    _prepare_dest(dest)
    files, findings = extract_files(text)
    written = write_files(dest, files, max_files=max_files, max_bytes=max_bytes)
    written.findings = findings + written.findings
    log.debug("extracted %d files (%d bytes) into %s", len(written.files), written.total_bytes, dest)
    return written


__all__ = ["MAX_BYTES", "MAX_FILES", "Extraction", "check_relpath", "extract_files",
           "extract_to_workspace", "write_files"]
