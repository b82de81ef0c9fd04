from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from harness.agent.workspace import ToolError, Workspace, WorkspaceLimits, skill_files_from_folder
from harness.extract.answer import MAX_BYTES, MAX_FILES, check_relpath

from tests.agent.agent_helpers import REPO, SKILL_FILES


def test_write_read_overwrite_and_nested(ws_base: Workspace):
    assert ws_base.write_file("a/b/c.cu", "one\n") == "wrote a/b/c.cu (4 bytes)"
    ws_base.write_file("a/b/c.cu", "two\n")
    assert ws_base.read_file("a/b/c.cu") == "two\n"
    assert ws_base.read_file("./a//b/c.cu") == "two\n"  # normalised as extraction does
    assert [p for p, _, _ in ws_base.project_files()] == ["a/b/c.cu"]


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "~/x", "", "a\x00b", "dir/"])
def test_paths_are_refused_as_extraction_refuses_them(ws_base: Workspace, bad: str):
    with pytest.raises(ToolError) as err:
        ws_base.write_file(bad, "x")
    reason = check_relpath(bad.strip())[1]
    assert reason and reason in str(err.value)
    with pytest.raises(ToolError):
        ws_base.read_file(bad)


def test_limits_come_from_extraction():
    assert WorkspaceLimits().max_files == MAX_FILES and WorkspaceLimits().max_bytes == MAX_BYTES


def test_count_and_size_limits(tmp_path: Path):
    ws = Workspace.create(tmp_path / "t", None, WorkspaceLimits(max_files=2, max_bytes=10))
    ws.write_file("a", "12345")
    ws.write_file("b", "12345")
    ws.write_file("b", "123")  # replacing counts the new size only
    with pytest.raises(ToolError, match="limit is 2"):
        ws.write_file("c", "1")
    with pytest.raises(ToolError, match="10-byte limit"):
        ws.write_file("a", "123456789")
    assert ws.read_file("a") == "12345"


def test_skill_is_readable_and_read_only(ws_skill: Workspace):
    assert ws_skill.read_file("skill/SKILL.md") == SKILL_FILES["SKILL.md"]
    assert ws_skill.read_file("skill/references/notes.md") == "NOTES\n"
    for path in ("skill/SKILL.md", "skill/new.md", "skill/references/x.md", "./skill/SKILL.md"):
        with pytest.raises(ToolError, match="read-only"):
            ws_skill.write_file(path, "overwritten")
    assert ws_skill.read_file("skill/SKILL.md") == SKILL_FILES["SKILL.md"]
    assert stat.S_IMODE(os.stat(ws_skill.skill_dir / "SKILL.md").st_mode) == 0o444
    # The graded project never holds the skill.
    assert ws_skill.project_files() == []


def test_baseline_has_no_skill_and_says_so_like_any_missing_path(ws_base: Workspace):
    with pytest.raises(ToolError) as skill_err:
        ws_base.read_file("skill/SKILL.md")
    with pytest.raises(ToolError) as other_err:
        ws_base.read_file("nothere/SKILL.md")
    assert str(skill_err.value) == "skill/SKILL.md: no such file or folder"
    assert str(other_err.value) == "nothere/SKILL.md: no such file or folder"
    with pytest.raises(ToolError, match="read-only"):
        ws_base.write_file("skill/SKILL.md", "x")  # the same refusal in both arms
    for path in ("skill", "nothere"):
        with pytest.raises(ToolError) as err:
            ws_base.list_files(path)
        assert str(err.value) == f"{path}: no such file or folder"
    assert not (ws_base.trial_dir / "skill").exists()


def test_list_files(ws_skill: Workspace, ws_base: Workspace):
    for ws in (ws_skill, ws_base):
        ws.write_file("build.toml", "x")
        ws.write_file("src/k.cu", "yy")
    assert ws_base.list_files() == "build.toml  (1 bytes)\nsrc/k.cu  (2 bytes)"
    listing = ws_skill.list_files(".")
    assert "skill/SKILL.md" in listing and "skill/references/notes.md" in listing and "build.toml" in listing
    assert ws_skill.list_files("skill/references") == "skill/references/notes.md  (6 bytes)"
    assert ws_skill.list_files("src/") == "src/k.cu  (2 bytes)"
    with pytest.raises(ToolError):
        ws_skill.list_files("../")


def test_symlinks_are_never_followed(ws_base: Workspace, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    # A build step (not the tools: they cannot make links) leaves symlinks in the project.
    os.symlink(outside, ws_base.project_dir / "linkdir")
    os.symlink(outside / "secret.txt", ws_base.project_dir / "linkfile")
    for path in ("linkdir/secret.txt", "linkfile"):
        with pytest.raises(ToolError, match="symlink"):
            ws_base.read_file(path)
    with pytest.raises(ToolError, match="symlink"):
        ws_base.write_file("linkdir/new.txt", "x")
    assert not (outside / "new.txt").exists()
    ws_base.write_file("linkfile", "replaced")  # replaces the link itself, not its target
    assert (outside / "secret.txt").read_text() == "SECRET"
    assert not (ws_base.project_dir / "linkfile").is_symlink()
    assert "linkdir  (symlink, not followed)" in ws_base.list_files()
    with pytest.raises(ToolError):
        ws_base.list_files("linkdir")


def test_reads_are_bounded_and_text_only(tmp_path: Path):
    ws = Workspace.create(tmp_path / "t", None, WorkspaceLimits(max_read_chars=10))
    ws.write_file("long.txt", "x" * 50)
    assert ws.read_file("long.txt").startswith("x" * 10 + "\n[... cut")
    (ws.project_dir / "bin.o").write_bytes(b"\x7fELF\0\0")
    with pytest.raises(ToolError, match="binary"):
        ws.read_file("bin.o")
    os.mkfifo(ws.project_dir / "fifo")
    done = threading.Event()

    def read_fifo():
        with pytest.raises(ToolError, match="not a regular file"):
            ws.read_file("fifo")
        done.set()

    threading.Thread(target=read_fifo, daemon=True).start()
    assert done.wait(5), "read_file hung on a FIFO"
    ws.write_file("d/x", "1")
    with pytest.raises(ToolError, match="is a folder"):
        ws.read_file("d")


def test_write_where_a_file_is_on_the_way(ws_base: Workspace):
    ws_base.write_file("a", "file")
    with pytest.raises(ToolError, match="is a file"):
        ws_base.write_file("a/b.cu", "x")
    ws_base.write_file("d/x", "1")
    with pytest.raises(ToolError, match="is a folder"):
        ws_base.write_file("d", "x")


def test_create_needs_a_fresh_folder(tmp_path: Path):
    Workspace.create(tmp_path / "t", None)
    with pytest.raises(FileExistsError):
        Workspace.create(tmp_path / "t", None)


def test_skill_files_from_the_shipped_skill(tmp_path: Path):
    files, skipped = skill_files_from_folder(REPO / "skills" / "h100-kernel-builder")
    assert "SKILL.md" in files and any(p.startswith("references/") for p in files) and skipped == []
    folder = tmp_path / "s"
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text("hi")
    (folder / "scripts" / "blob.bin").write_bytes(b"\xff\xfe\x00")
    os.symlink("/etc/passwd", folder / "passwd")
    files, skipped = skill_files_from_folder(folder)
    assert files == {"SKILL.md": "hi"} and sorted(skipped) == ["passwd", "scripts/blob.bin"]
