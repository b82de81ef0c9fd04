"""Content travel: references and projects as bytes to a node, logs as bytes back."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from harness.common.results import CheckResult
from harness.executors.content import (materialize_project, materialize_reference, pack, project_files, relocate,
                                       unpack, with_content)
from harness.executors.tasks import GradeTask, ReferenceContent
from harness.inputs.reference import op_name_of
from harness.scoring.grade import Grade
from harness.scoring.verdict import score
from tests.executors.runs import REFS


def test_a_reference_keeps_its_op_name_on_the_node(tmp_path: Path) -> None:
    ref = ReferenceContent.from_path(REFS / "rmsnorm" / "reference.py")
    path = materialize_reference(ref, tmp_path)
    assert op_name_of(path) == "rmsnorm" and path.read_bytes() == (REFS / "rmsnorm" / "reference.py").read_bytes()
    assert materialize_reference(ref, tmp_path) == path  # once per content
    with pytest.raises(ValueError):
        materialize_reference(ref.model_copy(update={"source": b"x"}), tmp_path)


def test_tasks_carry_content_not_paths(tmp_path: Path) -> None:
    case = {"input": "x", "kernel": {"op": "softmax", "api": "softmax(x)", "checks": ["run"]}}
    task = with_content(GradeTask(key="1", case=case, text="answer", level="run", device="cpu"))
    assert task.reference is not None and task.reference.folder == "softmax"
    project = with_content(GradeTask(key="p", kind="project", project_dir=str(REFS / "rmsnorm"), level="compile",
                                     device="cpu"))
    assert project.project_name == "rmsnorm" and "build.toml" in project.files
    assert project_files(REFS / "rmsnorm") == project.files
    folder = materialize_project(project.files, "rmsnorm", tmp_path)
    assert folder.name == "rmsnorm" and (folder / "build.toml").read_bytes() == project.files["build.toml"]
    with pytest.raises(ValueError):
        materialize_project({"../evil": b"x"}, "p", tmp_path / "other")


def test_logs_come_back_and_paths_point_at_them(tmp_path: Path) -> None:
    node = tmp_path / "node" / "grade-1"
    (node / "run").mkdir(parents=True)
    (node / "run.json").write_text('{"calls": []}')
    (node / "run" / "call_0.pt").write_bytes(b"\0" * 10)  # tensors stay behind
    cache_log = tmp_path / "cache" / "ab" / "compile.log"
    cache_log.parent.mkdir(parents=True)
    cache_log.write_text("nvcc ok")
    results = [CheckResult(name="compile", status="pass", log_path=str(cache_log)),
               CheckResult(name="run", status="pass", log_path=str(node / "run.json"))]
    grade = Grade(results=results, required=["run"], score=score(results, ["run"], "run"), level="run", device="cpu")
    bundle, outside = pack(node, grade)
    dest = tmp_path / "driver" / "grade-1"
    unpack(bundle, dest)
    moved = relocate(grade, str(node), dest, outside)
    assert Path(moved.results[1].log_path) == dest / "run.json" and (dest / "run.json").is_file()
    assert Path(moved.results[0].log_path).read_text() == "nvcc ok"
    assert not (dest / "run" / "call_0.pt").exists()


def test_a_bundle_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.TarError):
        unpack(buf.getvalue(), tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()
