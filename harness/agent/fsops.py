"""File operations that never follow a symlink: one directory fd at a time, O_NOFOLLOW.

harness/extract/answer.py has the same walk for extraction, but its writer creates with
O_EXCL (an answer never overwrites) and is private; an agent rewrites its files, so this
writer replaces atomically. One shared module for both is the intended end state.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
TMP_PREFIX = ".kg-tmp-"
"""Temp files of a replace in progress; a kill can leave one, and listings hide them."""


class ToolError(Exception):
    """A refusal the model is told about as a tool error (the trial goes on); str() is the message."""


def refusal(err: OSError, path: str, action: str) -> ToolError:
    if err.errno == errno.ENOENT:
        return ToolError(f"{path}: no such file or folder")
    if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        # O_NOFOLLOW|O_DIRECTORY reports a symlink as ELOOP or ENOTDIR, a file on the way as ENOTDIR.
        return ToolError(f"{path}: a part of this path is a file or a symlink (symlinks are never followed)")
    return ToolError(f"{path}: cannot {action}: {err.strerror}")


def descend(root_fd: int, folders: list[str], *, create: bool) -> int:
    """fd of root/folders... (made when `create`); the caller closes it. Raises OSError."""
    current = os.dup(root_fd)
    try:
        for folder in folders:
            if create:
                try:
                    os.mkdir(folder, 0o755, dir_fd=current)
                except FileExistsError:
                    pass
            nxt = os.open(folder, DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = nxt
    except BaseException:
        os.close(current)
        raise
    return current


def walk(root_fd: int, prefix: str = "") -> list[tuple[str, int, str]]:
    """(relative path, size, kind) under root_fd, sorted, symlinks listed but not followed.
    kind is file, symlink or other."""
    out: list[tuple[str, int, str]] = []
    for top, dirs, files, dfd in os.fwalk(".", dir_fd=root_fd, follow_symlinks=False):
        base = "" if top == "." else top[2:] + "/"
        dirs.sort()
        # fwalk puts a symlink to a folder among dirs (and does not descend it): show it as a link.
        links = [d for d in dirs if stat.S_ISLNK(os.lstat(d, dir_fd=dfd).st_mode)]
        for name in sorted(files + links):
            if name.startswith(TMP_PREFIX):
                continue
            st = os.lstat(name, dir_fd=dfd)
            kind = "file" if stat.S_ISREG(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "other"
            out.append((prefix + base + name, st.st_size, kind))
    return out


def walk_path(root: str | os.PathLike, inner: str, prefix: str, *, label: str | None = None) -> list[tuple[str, int, str]]:
    """walk() of root/inner; ToolError (naming `label`) when inner is not a reachable folder."""
    root_fd = os.open(root, DIR_FLAGS)
    try:
        try:
            dfd = descend(root_fd, inner.split("/") if inner else [], create=False)
        except OSError as err:
            raise refusal(err, label or inner or ".", "list") from None
        try:
            return walk(dfd, prefix)
        finally:
            os.close(dfd)
    finally:
        os.close(root_fd)


def read_bytes(root: str | os.PathLike, inner: str, limit: int, *, label: str | None = None) -> bytes:
    """Up to `limit` bytes of the regular file root/inner; `label` names it in refusals."""
    label = label or inner
    *folders, name = inner.split("/")
    root_fd = os.open(root, DIR_FLAGS)
    try:
        dfd = descend(root_fd, folders, create=False)
        try:
            # O_NONBLOCK: a FIFO left in the tree must not hang the harness.
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            os.close(dfd)
    except OSError as err:
        raise refusal(err, label, "read") from None
    finally:
        os.close(root_fd)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ToolError(f"{label}: is a folder (use list_files)" if stat.S_ISDIR(mode)
                        else f"{label}: not a regular file")
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit)


def replace_file(root: str | os.PathLike, inner: str, data: bytes, mode: int = 0o644) -> None:
    """Create or replace root/inner atomically: a temp file made with O_EXCL|O_NOFOLLOW,
    then a rename in the same directory fd (a rename replaces a symlink, never follows it)."""
    *folders, name = inner.split("/")
    root_fd = os.open(root, DIR_FLAGS)
    try:
        try:
            dfd = descend(root_fd, folders, create=True)
        except OSError as err:
            raise refusal(err, inner, "write") from None
        try:
            try:
                if stat.S_ISDIR(os.lstat(name, dir_fd=dfd).st_mode):
                    raise ToolError(f"{inner}: is a folder")
            except FileNotFoundError:
                pass
            tmp = TMP_PREFIX + secrets.token_hex(6)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(root_fd)


__all__ = ["DIR_FLAGS", "TMP_PREFIX", "ToolError", "descend", "read_bytes", "refusal", "replace_file",
           "walk", "walk_path"]
