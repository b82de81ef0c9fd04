"""A trial's workspace in agent mode: the project the model builds, plus skill/ read-only.

Layout on disk (trial_dir is the harness's folder for the trial):
    trial_dir/project/   what write_file writes and what the checks grade
    trial_dir/skill/     with-skill arm only: the skill's files, copied in
The model sees one tree: `skill/...` maps to the skill copy, every other path to the
project. Keeping the skill outside the project means the graded project (and the static
scan, which reads every source) never holds the skill's own files.

Paths go through harness.extract.answer.check_relpath (the rules for extracted answers),
and the project's size and count limits are extraction's MAX_FILES / MAX_BYTES. Every
access goes through fsops (directory fds, O_NOFOLLOW), so no symlink is ever followed.
In the baseline arm a skill/ path is answered exactly as any missing path is.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel

from harness.agent.fsops import DIR_FLAGS, ToolError, read_bytes, replace_file, walk, walk_path
from harness.extract.answer import MAX_BYTES, MAX_FILES, check_relpath

SKILL_ROOT = "skill"


class WorkspaceLimits(BaseModel):
    max_files: int = MAX_FILES
    max_bytes: int = MAX_BYTES
    max_read_chars: int = 100_000
    """read_file returns at most this much (a note says the rest was cut): tokens cost money."""
    max_list_entries: int = 500


class Workspace:
    """The tools' view of a trial folder. Refusals meant for the model raise ToolError."""

    def __init__(self, trial_dir: Path, *, with_skill: bool, limits: WorkspaceLimits | None = None) -> None:
        self.trial_dir = Path(trial_dir)
        self.project_dir = self.trial_dir / "project"
        self.skill_dir = self.trial_dir / SKILL_ROOT if with_skill else None
        self.limits = limits or WorkspaceLimits()

    @classmethod
    def create(cls, trial_dir: Path, skill_files: dict[str, str] | None,
               limits: WorkspaceLimits | None = None) -> Workspace:
        """A fresh workspace; skill_files (path -> text) is None in the baseline arm.
        Raises FileExistsError when trial_dir/project exists (a harness bug, not the model's)."""
        trial_dir = Path(trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "project").mkdir(mode=0o755)
        ws = cls(trial_dir, with_skill=skill_files is not None, limits=limits)
        if ws.skill_dir is not None:
            ws.skill_dir.mkdir(mode=0o755)
            for rel, text in sorted((skill_files or {}).items()):
                ok, why = check_relpath(rel)
                if ok is None:
                    raise ValueError(f"skill file {rel!r}: {why}")
                # Read-only on disk too: the tools refuse writes; this guards against harness slips.
                replace_file(ws.skill_dir, ok, text.encode("utf-8"), mode=0o444)
        return ws

    def _resolve(self, raw: str, *, folder: bool) -> tuple[Path, str, str]:
        """(root folder, path inside it, path as shown to the model), or ToolError."""
        text = raw.strip()
        if folder:
            text = text.rstrip("/")
            if text in ("", "."):
                return self.project_dir, "", "."
        norm, why = check_relpath(text)
        if norm is None:
            raise ToolError(f"{raw!r}: {why}")
        head, _, rest = norm.partition("/")
        if head == SKILL_ROOT:
            if self.skill_dir is None:
                raise ToolError(f"{norm}: no such file or folder")
            return self.skill_dir, rest, norm
        return self.project_dir, norm, norm

    # -- the tools -----------------------------------------------------------------

    def read_file(self, path: str) -> str:
        root, inner, shown = self._resolve(path, folder=False)
        if not inner:
            raise ToolError(f"{shown}: is a folder (use list_files)")
        cap = self.limits.max_read_chars
        data = read_bytes(root, inner, cap * 4 + 1, label=shown)  # UTF-8: at most 4 bytes a character
        if b"\0" in data:
            raise ToolError(f"{shown}: a binary file, not shown")
        text = data.decode("utf-8", errors="replace")
        if len(text) > cap:
            return text[:cap] + f"\n[... cut: only the first {cap} characters are shown]"
        return text

    def write_file(self, path: str, content: str) -> str:
        # Checked before resolving, so baseline and with-skill refuse skill/ writes alike.
        norm, _ = check_relpath(path.strip())
        if norm is not None and norm.split("/")[0] == SKILL_ROOT:
            raise ToolError(f"{norm}: skill/ is read-only; write your files elsewhere")
        _, inner, shown = self._resolve(path, folder=False)
        data = content.encode("utf-8", errors="surrogatepass")
        current = {p: size for p, size, _ in self.project_files()}
        count = len(current) + (inner not in current)
        total = sum(current.values()) - current.get(inner, 0) + len(data)
        if count > self.limits.max_files:
            raise ToolError(f"{shown}: the workspace holds {len(current)} files, the limit is "
                            f"{self.limits.max_files}: not written")
        if total > self.limits.max_bytes:
            raise ToolError(f"{shown}: {len(data)} bytes would take the workspace past its "
                            f"{self.limits.max_bytes}-byte limit: not written")
        replace_file(self.project_dir, inner, data)
        return f"wrote {shown} ({len(data)} bytes)"

    def list_files(self, path: str = ".") -> str:
        root, inner, shown = self._resolve(path, folder=True)
        prefix = "" if shown == "." else shown + "/"
        entries = walk_path(root, inner, prefix, label=shown)
        if shown == "." and self.skill_dir is not None:
            entries += walk_path(self.skill_dir, "", SKILL_ROOT + "/")
        if not entries:
            return f"{shown}: empty"
        cap = self.limits.max_list_entries
        lines = [f"{p}  ({size} bytes)" if kind == "file" else f"{p}  ({kind}, not followed)"
                 for p, size, kind in entries[:cap]]
        if len(entries) > cap:
            lines.append(f"[... {len(entries) - cap} more not shown]")
        return "\n".join(lines)

    # -- for the harness -----------------------------------------------------------

    def read_project(self) -> dict[str, bytes]:
        """Every regular file of the project, path -> bytes (write_file writes nothing else)."""
        return {p: read_bytes(self.project_dir, p, size + 1) for p, size, kind in self.project_files() if kind == "file"}

    def snapshot(self, dest: Path, files: dict[str, bytes] | None = None) -> Path:
        """A copy of the project at dest (a new folder) for the checks: builds and the sandboxed
        run write there, never into the workspace the model keeps editing."""
        dest = Path(dest)
        dest.mkdir(parents=True)
        for rel, data in sorted((files if files is not None else self.read_project()).items()):
            replace_file(dest, rel, data)
        return dest

    def project_files(self) -> list[tuple[str, int, str]]:
        """(path, size, kind) of every entry of the project: what run_checks and submit grade."""
        root_fd = os.open(self.project_dir, DIR_FLAGS)
        try:
            return walk(root_fd)
        finally:
            os.close(root_fd)


def project_digest(files: dict[str, bytes]) -> str:
    """One hash of a project's content (paths and bytes). The same function keys run_checks'
    reuse in the loop and the report's pass@turn, which rebuilds the files from stored writes."""
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        h.update(f"{path}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def skill_files_from_folder(folder: Path, *, max_bytes: int = MAX_BYTES) -> tuple[dict[str, str], list[str]]:
    """Every UTF-8 file of a skill folder (SKILL.md, references/, scripts/, ...), and what was
    left out (symlinks, binary files, past the size cap). Stored with the run, so a resumed or
    imported run rebuilds the same skill/ without the original folder."""
    files: dict[str, str] = {}
    skipped: list[str] = []
    total = 0
    root_fd = os.open(folder, DIR_FLAGS)
    try:
        entries = walk(root_fd)
    finally:
        os.close(root_fd)
    for rel, size, kind in entries:
        if kind != "file" or total + size > max_bytes:
            skipped.append(rel)
            continue
        try:
            files[rel] = read_bytes(folder, rel, size + 1).decode("utf-8")
        except (UnicodeDecodeError, ToolError):
            skipped.append(rel)
            continue
        total += size
    return files, skipped


__all__ = ["SKILL_ROOT", "ToolError", "Workspace", "WorkspaceLimits", "project_digest", "skill_files_from_folder"]
