"""Content travel: a task's files as bytes to a node, its logs as bytes back.

On a node, references and projects are written once into a content-addressed folder of the
node's cache (`<cache>/executor/`, KERNELGRADE_CACHE or --cache-dir, which may be shared);
the grading's own folder is a temporary one whose small files (logs, run.json, the extracted
project) come back as one tar and land in the driver's artifacts folder, with the grade's log
paths rewritten to point there. Tensors and binaries stay behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

from harness.common.errors import UserError
from harness.executors.tasks import GradeTask, ReferenceContent
from harness.scoring.grade import Grade

#: What comes back per grading: files up to 1 MB each, 8 MB in all; no tensors or binaries.
MAX_FILE_BYTES = 1 << 20
MAX_BUNDLE_BYTES = 8 << 20
SKIP_SUFFIXES = (".pt", ".so", ".o", ".a", ".cubin", ".fatbin", ".pyc")
#: A project sent to a node: at most this much (a model's answer is far smaller).
MAX_PROJECT_BYTES = 64 << 20
NODE_LOGS = "_node_logs"


def content_root(cache_dir: Path | None = None) -> Path:
    from harness.common.paths import cache_dir as default_cache

    root = (Path(cache_dir) if cache_dir else default_cache()) / "executor"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write_once(target: Path, data: bytes) -> None:
    """Write `data` at `target` unless it is there already; atomic (another worker may race)."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)


def materialize_reference(ref: ReferenceContent, root: Path) -> Path:
    """refs/<sha>/<folder>/reference.py: the folder keeps the op's name."""
    if hashlib.sha256(ref.source).hexdigest() != ref.sha256:
        raise ValueError(f"reference {ref.folder}: content does not match its sha256")
    path = root / "refs" / ref.sha256[:20] / ref.folder / "reference.py"
    _write_once(path, ref.source)
    return path


def project_files(project_dir: Path) -> dict[str, bytes]:
    """A project's files as bytes (no .git, no caches), for a node without the driver's disk."""
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(Path(project_dir).rglob("*")):
        rel = path.relative_to(project_dir)
        if not path.is_file() or path.is_symlink() or {".git", "__pycache__"} & set(rel.parts):
            continue
        data = path.read_bytes()
        total += len(data)
        if total > MAX_PROJECT_BYTES:
            raise UserError(f"{project_dir}: over {MAX_PROJECT_BYTES >> 20} MB of files, too big to send to a node")
        out[rel.as_posix()] = data
    return out


def files_key(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def materialize_project(files: dict[str, bytes], name: str, root: Path) -> Path:
    """projects/<sha>/<name>/: the project as sent, written once per content."""
    folder = root / "projects" / files_key(files)[:20] / (name or "project")
    if (folder.parent / ".complete").is_file():
        return folder
    for rel, data in files.items():
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ValueError(f"project file {rel!r}: not a relative path inside the project")
        _write_once(folder / rel, data)
    (folder.parent / ".complete").write_text("")
    return folder


def _wanted(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and path.suffix not in SKIP_SUFFIXES \
        and path.stat().st_size <= MAX_FILE_BYTES


def pack(folder: Path, grade: Grade) -> tuple[bytes, dict[str, str]]:
    """The grading folder's small files plus the logs its results point to outside it (a
    compile log in the node's cache), as a gzipped tar; and node path -> name in the tar."""
    buf = io.BytesIO()
    total = 0
    outside: dict[str, str] = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if _wanted(path) and total + path.stat().st_size <= MAX_BUNDLE_BYTES:
                total += path.stat().st_size
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        for i, result in enumerate(grade.results):
            if not result.log_path:
                continue
            log = Path(result.log_path)
            if log.is_relative_to(folder) or not _wanted(log) or total + log.stat().st_size > MAX_BUNDLE_BYTES:
                continue
            name = f"{NODE_LOGS}/{i}-{result.name}-{log.name}"
            total += log.stat().st_size
            tar.add(log, arcname=name, recursive=False)
            outside[str(log)] = name
    return buf.getvalue(), outside


def unpack(bundle: bytes, dest: Path) -> None:
    """Extract a bundle into `dest`; members that would land outside it are refused."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def relocate(grade: Grade, node_root: str, dest: Path, outside: dict[str, str]) -> Grade:
    """Log paths that pointed into the node's folder (or at a log the bundle carried) now point
    into `dest` on the driver; others stay as they were (paths on that node)."""
    results = []
    for result in grade.results:
        path = result.log_path
        if path:
            if path in outside:
                path = str(dest / outside[path])
            elif Path(path).is_relative_to(node_root):
                path = str(dest / Path(path).relative_to(node_root))
        results.append(result.model_copy(update={"log_path": path}))
    return grade.model_copy(update={"results": results})


def reference_path_of(task: GradeTask) -> Path | None:
    """The reference a task grades against, on the driver: the explicit one, the case's own
    file, else its op's kernels_reference/<op>/reference.py. None: none found (a project's
    root reference.py travels with its files; the node says what is missing)."""
    from harness.inputs.reference import op_reference_path

    if task.reference_path:
        return Path(task.reference_path)
    kernel = (task.case or {}).get("kernel") or {}
    if kernel.get("reference"):
        return Path(kernel["reference"])
    op = kernel.get("op") or task.options.get("op")
    if not op:
        return None
    try:
        return op_reference_path(op)
    except UserError:
        return None


def with_content(task: GradeTask) -> GradeTask:
    """The task as content only, ready for a node that cannot read this machine's disk: a
    project's files and the reference's source as bytes."""
    update: dict = {}
    if task.kind == "project" and task.files is None and task.project_dir:
        update["files"] = project_files(Path(task.project_dir))
        update["project_name"] = Path(task.project_dir).resolve().name
    if task.reference is None and (path := reference_path_of(task)) is not None and path.is_file():
        update["reference"] = ReferenceContent.from_path(path)
    return task.model_copy(update=update) if update else task


__all__ = ["content_root", "files_key", "materialize_project", "materialize_reference", "pack",
           "project_files", "reference_path_of", "relocate", "unpack", "with_content"]
