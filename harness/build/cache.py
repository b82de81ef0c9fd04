"""Content-addressed cache for build outputs (compiles, extension builds).

The key is a sha256 over everything that can change the output: the sources,
the flags, the toolchain and torch versions. A hit returns the stored folder;
a miss builds into a temporary folder and renames it in atomically, so a
killed build never leaves a half entry behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from harness.common.paths import cache_dir


def content_key(*, files: dict[str, bytes], **parts: object) -> str:
    """sha256 over sorted file paths + contents and the JSON of the other parts."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()


def read_tree(root: Path, *, suffixes: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """Every regular file under root (optionally filtered by suffix), by relative path."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and (suffixes is None or path.suffix in suffixes):
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


class BuildCache:
    def __init__(self, kind: str, root: Path | None = None) -> None:
        self.root = (root or cache_dir()) / kind
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> Path | None:
        entry = self.path(key)
        return entry if (entry / ".complete").exists() else None

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_path = self.root / f".{key}.lock"
        with open(lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get_or_build(self, key: str, build: Callable[[Path], bool]) -> tuple[Path | None, bool]:
        """Return (entry, hit). `build(tmpdir)` fills tmpdir and returns True on success;
        only successful builds are cached (a failure is re-tried next time, since
        it may have been a timeout or an out-of-memory kill)."""
        if (hit := self.lookup(key)) is not None:
            return hit, True
        with self._locked(key):
            if (hit := self.lookup(key)) is not None:  # another process built it meanwhile
                return hit, True
            entry = self.path(key)
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=entry.parent))
            try:
                if not build(tmp):
                    return tmp, False  # caller reads the logs; not cached
                (tmp / ".complete").write_text("")
                if entry.exists():
                    shutil.rmtree(entry)
                os.rename(tmp, entry)
                return entry, False
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    def build_logged(self, key: str, build: Callable[[Path], bool], log_name: str) -> tuple[Path | None, bool, str]:
        """get_or_build for builds that write `log_name`: (entry or None when the build
        failed, hit, the log's text). A failed build's temp folder is removed here, after
        its log is read, so failures are never cached and never left behind."""
        entry, hit = self.get_or_build(key, build)
        log = entry / log_name if entry is not None else None
        text = log.read_text(errors="replace") if log is not None and log.is_file() else ""
        if entry is not None and not (entry / ".complete").exists():
            shutil.rmtree(entry, ignore_errors=True)
            entry = None
        return entry, hit, text
