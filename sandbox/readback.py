"""Reading what untrusted code left in its workspace, without following its symlinks.

Inside bwrap a symlink `out.json -> /root/.config/keys` points at nothing; read by the
harness afterwards it would resolve on the host and leak the target into a report.
Every component is opened with O_NOFOLLOW relative to the previous directory's fd,
so neither a symlinked file nor a symlinked parent directory is followed.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath


class WorkspaceEscape(ValueError):
    """A path that leaves the workspace or goes through a symlink."""


def _open_nofollow(root: Path, rel: str | os.PathLike[str]) -> int:
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("..", ".") for p in parts):
        raise WorkspaceEscape(f"{rel}: not a plain relative path")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | (0 if last else os.O_DIRECTORY)
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                # ELOOP: the component is a symlink; ENOTDIR: a symlink where a directory was expected.
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
                        os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise WorkspaceEscape(f"{rel}: {part} is a symlink") from None
                raise
            os.close(fd)
            fd = nxt
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WorkspaceEscape(f"{rel}: not a regular file")
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_bytes(root: Path, rel: str | os.PathLike[str], *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
    """The file `rel` under `root`, refusing symlinks anywhere on the way and anything
    larger than `max_bytes` (raises WorkspaceEscape or ValueError)."""
    fd = _open_nofollow(Path(root), rel)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{rel}: larger than {max_bytes} bytes")
    return data


def read_text(root: Path, rel: str | os.PathLike[str], *, max_bytes: int = 16 * 1024 * 1024) -> str:
    return read_bytes(root, rel, max_bytes=max_bytes).decode("utf-8", errors="replace")


__all__ = ["WorkspaceEscape", "read_bytes", "read_text"]
