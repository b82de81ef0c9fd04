"""Extraction of files from a model's answer: accepted forms, refusals, safe writing.

Answers under tests/fixtures/answers/ are labelled, hand-written fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.prompts.answer_format import ANSWER_FORMAT, required_api_section
from harness.inputs.cases import KernelSpec
from harness.checks.build_toml import validate_project
from harness.extract.answer import check_relpath, extract_files, extract_to_workspace, write_files

FIXTURES = Path(__file__).parents[1] / "fixtures"
ANSWERS = FIXTURES / "answers"
GOOD = FIXTURES / "build_toml" / "good"
GOOD_FILES = sorted(p.relative_to(GOOD).as_posix() for p in GOOD.rglob("*") if p.is_file())


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def one(text: str) -> tuple[str, str]:
    files, _ = extract_files(text)
    assert len(files) == 1, files
    return next(iter(files.items()))


def errors_of(findings):
    return [f for f in findings if f.severity == "error"]


# --------------------------------------------------------------------------- whole fixture answers

@pytest.mark.parametrize("answer", ["primary.md", "variants.md", "wrapped_crlf.md"])
def test_fixture_answers_give_the_good_project(answer: str, tmp_path: Path):
    text = (ANSWERS / answer).read_bytes().decode()
    dest = tmp_path / "ws"
    result = extract_to_workspace(text, dest)
    assert sorted(result.files) == GOOD_FILES
    assert tree(dest) == tree(GOOD), "contents identical to the fixture project"
    assert errors_of(result.findings) == []
    assert result.total_bytes == sum(len(c.encode()) for c in tree(GOOD).values())
    assert [f for f in validate_project(dest) if f.severity != "note"] == []


def test_variants_answer_notes_the_block_without_path(tmp_path: Path):
    result = extract_to_workspace((ANSWERS / "variants.md").read_text(), tmp_path / "ws")
    notes = [f for f in result.findings if f.severity == "note"]
    assert len(notes) == 1 and "without a path" in notes[0].reason


def test_wrapped_answer_says_the_folder_was_stripped():
    _, findings = extract_files((ANSWERS / "wrapped_crlf.md").read_bytes().decode())
    assert any(f.key == "tiny-relu" and "project root" in f.reason for f in findings)


def test_hostile_answer_writes_only_the_valid_file(tmp_path: Path):
    outside = tmp_path / "escape.py"
    dest = tmp_path / "a" / "b" / "ws"
    result = extract_to_workspace((ANSWERS / "hostile.md").read_text(), dest)
    assert result.files == ["build.toml"]
    keys = {f.key: f.reason for f in errors_of(result.findings)}
    assert "absolute path" in keys["/etc/cron.d/evil"]
    assert "'..' component" in keys["../../escape.py"]
    assert "backslash" in keys["torch-ext\\\\..\\\\..\\\\win.cpp"]
    assert "drive letter" in keys["C:/Windows/evil.dll"]
    assert "home-relative" in keys["~/.bashrc"]
    assert "empty path" in keys["(empty)"]
    assert len(keys) == 6
    assert not outside.exists() and tree(tmp_path) == {"a/b/ws/build.toml": '[general]\nname = "ok"\n'}


# --------------------------------------------------------------------------- accepted forms

@pytest.mark.parametrize("info", [
    "cuda path=k/a.cu", "cuda path='k/a.cu'", 'cuda path="k/a.cu"', "cuda file=k/a.cu",
    "cuda filename=k/a.cu", 'cuda title="k/a.cu"', "cuda k/a.cu", "k/a.cu", "cuda:k/a.cu", "{.cuda path=k/a.cu}",
])
def test_path_in_info_string(info: str):
    assert one(f"```{info}\n__global__ void f() {{}}\n```\n") == ("k/a.cu", "__global__ void f() {}\n")


def test_bare_file_name_in_info_string():
    assert one("```toml build.toml\n[general]\n```") == ("build.toml", "[general]\n")
    assert one("```build.toml\n[general]\n```") == ("build.toml", "[general]\n")


@pytest.mark.parametrize("first", [
    "// file: k/a.cu", "// File: k/a.cu", "# file: k/a.cu", "// path: k/a.cu", "/* file: k/a.cu */",
    "// k/a.cu", "# k/a.cu", "<!-- file: k/a.cu -->",
])
def test_path_on_first_line_is_used_and_not_written(first: str):
    assert one(f"```cuda\n{first}\nint x;\n```") == ("k/a.cu", "int x;\n")


def test_first_line_code_is_not_taken_for_a_path():
    files, findings = extract_files("```cpp\n#include <torch/all.h>\nint x;\n```\n"
                                    "```cpp\n#pragma once\n```\n```python\n# compute the norm\nx = 1\n```")
    assert files == {} and len(findings) == 3


@pytest.mark.parametrize("above", [
    "### `build.toml`", "### build.toml", "## File: build.toml", "**build.toml**:", "**`build.toml`**",
    "`build.toml`:", "File: `build.toml`", "1. `build.toml`", "- **build.toml**", "Here is `build.toml`:",
    "Create the file `build.toml` with the following content:", "### 1. Build config (`build.toml`)",
    "#### Build configuration: build.toml", "**The build file `build.toml`**",
])
def test_path_on_the_line_above(above: str):
    assert one(f"Intro.\n\n{above}\n\n```toml\n[general]\n```\n") == ("build.toml", "[general]\n")


def test_prose_mentioning_a_file_is_not_a_path():
    files, findings = extract_files("This is like `foo.cu` but faster.\n\n```cpp\nint x;\n```\n")
    assert files == {} and findings[0].severity == "note"


def test_heading_with_several_names_or_prose_is_not_a_path():
    for above in ("### Compare `a.cu` and `b.cu`", "### Step 2: install it", "See `a.cu` for details."):
        files, _ = extract_files(f"{above}\n```cpp\nint x;\n```\n")
        assert files == {}, above


def test_first_line_naming_the_same_file_is_stripped_silently():
    files, findings = extract_files("```cuda path=relu_cuda/relu.cu\n// relu.cu\nint x;\n```")
    assert files == {"relu_cuda/relu.cu": "int x;\n"} and findings == []


def test_info_string_wins_over_first_line_with_warning():
    files, findings = extract_files("```cuda path=k/a.cu\n// file: k/b.cu\nint x;\n```")
    assert files == {"k/a.cu": "int x;\n"}
    assert findings[0].severity == "warning" and "using the fence" in findings[0].reason


def test_longer_fence_holds_inner_fences():
    text = "````markdown path=README.md\n# Use\n```python\nimport x\n```\n````\n"
    assert one(text) == ("README.md", "# Use\n```python\nimport x\n```\n")


def test_indented_fence_in_a_list_item():
    text = "1. The header:\n\n   ```cpp path=k/a.h\n   #pragma once\n     int x;\n   ```\n"
    assert one(text) == ("k/a.h", "#pragma once\n  int x;\n")


def test_tilde_fence_and_dot_slash_prefix():
    assert one("~~~toml path=./build.toml\n[general]\n~~~\n") == ("build.toml", "[general]\n")


def test_unclosed_block_is_kept_with_a_warning():
    files, findings = extract_files("```cuda path=k/a.cu\nint x;\n")
    assert files == {"k/a.cu": "int x;\n"}
    assert findings[0].severity == "warning" and "never closed" in findings[0].reason


def test_duplicate_path_later_wins_with_warning():
    files, findings = extract_files("```cuda path=a.cu\nold\n```\ntext\n```cuda path=a.cu\nnew\n```")
    assert files == {"a.cu": "new\n"}
    assert [f.severity for f in findings] == ["warning"]
    assert "the later one is used" in findings[0].reason


# --------------------------------------------------------------------------- refused paths

@pytest.mark.parametrize(("raw", "why"), [
    ("/abs/a.cu", "absolute path"),
    ("a/../../b.cu", "'..' component"),
    ("..", "'..' component"),
    ("a\\b.cu", "backslash"),
    ("C:a.cu", "drive letter"),
    ("", "empty path"),
    ("./", "names a folder"),
    ("a/b/", "names a folder"),
    ("a\x00b.cu", "control"),
    ("a\x1b[31mb.cu", "control"),
    ("a\u202eb.cu", "control"),
    ("x" * 300 + ".cu", "too long"),
    ("a/ b.cu", "whitespace"),
])
def test_check_relpath_refusals(raw: str, why: str):
    path, reason = check_relpath(raw)
    assert path is None and reason is not None and why in reason


def test_check_relpath_normalises():
    assert check_relpath("./a//b/./c.cu") == ("a/b/c.cu", None)


def test_control_character_path_in_answer_is_an_error_finding():
    files, findings = extract_files('```cpp title="a\x07b.cpp"\nint x;\n```')
    assert files == {} and findings[0].severity == "error" and "control" in findings[0].reason


# --------------------------------------------------------------------------- limits and workspace

def test_too_many_files(tmp_path: Path):
    text = "".join(f"```cpp path=f{i}.cpp\nint x{i};\n```\n" for i in range(5))
    result = extract_to_workspace(text, tmp_path / "ws", max_files=3)
    assert result.files == ["f0.cpp", "f1.cpp", "f2.cpp"]
    err = errors_of(result.findings)
    assert len(err) == 1 and "2 files beyond the 3-file limit" in err[0].reason
    assert sorted(os.listdir(tmp_path / "ws")) == ["f0.cpp", "f1.cpp", "f2.cpp"]


def test_too_many_bytes(tmp_path: Path):
    text = "```cpp path=a.cpp\n" + "a" * 50 + "\n```\n```cpp path=b.cpp\n" + "b" * 50 + "\n```\n"
    result = extract_to_workspace(text, tmp_path / "ws", max_bytes=80)
    assert result.files == ["a.cpp"] and result.total_bytes == 51
    err = errors_of(result.findings)
    assert [f.key for f in err] == ["b.cpp"] and "80-byte limit" in err[0].reason
    assert not (tmp_path / "ws" / "b.cpp").exists()


def test_dest_must_be_fresh(tmp_path: Path):
    dest = tmp_path / "ws"
    dest.mkdir()
    (dest / "old.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        extract_to_workspace("```cpp path=a.cpp\nx\n```", dest)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert extract_to_workspace("```cpp path=a.cpp\nx\n```", empty).files == ["a.cpp"]


def test_dest_symlink_refused(tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "ws").symlink_to(target)
    with pytest.raises(FileExistsError, match="symlink"):
        extract_to_workspace("```cpp path=a.cpp\nx\n```", tmp_path / "ws")
    assert list(target.iterdir()) == []


def test_symlinked_folder_planted_in_workspace_is_not_followed(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "ws"
    dest.mkdir()
    (dest / "torch-ext").symlink_to(outside)
    result = write_files(dest, {"torch-ext/x.cpp": "int x;\n", "ok.cpp": "int y;\n"})
    assert result.files == ["ok.cpp"]
    assert errors_of(result.findings)[0].key == "torch-ext/x.cpp"
    assert "symlink" in errors_of(result.findings)[0].reason
    assert list(outside.iterdir()) == []


def test_symlinked_file_planted_in_workspace_is_not_overwritten(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    dest = tmp_path / "ws"
    dest.mkdir()
    (dest / "build.toml").symlink_to(victim)
    result = write_files(dest, {"build.toml": "[general]\n"})
    assert result.files == [] and "is a symlink: refused" in errors_of(result.findings)[0].reason
    assert victim.read_text() == "precious"


def test_file_where_a_folder_is_needed(tmp_path: Path):
    result = extract_to_workspace("```cpp path=a\nx\n```\n```cpp path=a/b.cpp\ny\n```", tmp_path / "ws")
    assert result.files == ["a"]
    assert "parent of this path is a file" in errors_of(result.findings)[0].reason


def test_write_files_rechecks_paths(tmp_path: Path):
    dest = tmp_path / "ws"
    dest.mkdir()
    result = write_files(dest, {"../x.cpp": "x", "/etc/y": "y"})
    assert result.files == [] and len(errors_of(result.findings)) == 2
    assert not (tmp_path / "x.cpp").exists()


def test_nothing_written_outside_dest(tmp_path: Path):
    dest = tmp_path / "ws"
    text = (ANSWERS / "primary.md").read_text() + (ANSWERS / "hostile.md").read_text()
    extract_to_workspace(text, dest)
    outside = [p for p in tmp_path.rglob("*") if dest not in p.parents and p != dest]
    assert outside == []


# --------------------------------------------------------------------------- the prompt's format

def test_answer_format_example_is_what_extraction_reads():
    files, _ = extract_files(ANSWER_FORMAT)
    assert list(files) == ["build.toml", "my_op_cuda/my_op.cu"]
    assert "registration.h" in ANSWER_FORMAT and "_ops.py" in ANSWER_FORMAT


def test_required_api_section_names_api_caps_dtypes():
    spec = KernelSpec(op="rmsnorm", api="rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor",
                      capabilities=["9.0", "9.0a"], dtypes=["float32", "bfloat16"])
    text = required_api_section(spec)
    assert text.startswith("## Required API")
    assert "`rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor`" in text
    assert '"9.0", "9.0a"' in text and "float32, bfloat16" in text


def test_regular_file_already_in_workspace_is_not_overwritten(tmp_path: Path):
    dest = tmp_path / "ws"
    dest.mkdir()
    (dest / "build.toml").write_text("mine")
    result = write_files(dest, {"build.toml": "[general]\n"})
    assert result.files == [] and "already exists" in errors_of(result.findings)[0].reason
    assert (dest / "build.toml").read_text() == "mine"


@pytest.mark.parametrize("text", [
    "#" * 5000 + " x y\n```cpp\nint x;\n```\n",
    "```cpp\n" + "/" * 200_000 + " q\n```\n",
    "```" + "a" * 200_000 + "\nq\n```\n",
    "```" + "a/" * 100_000 + " x\nq\n```\n",
    "**" + "`a.cu` " * 20_000 + "**\n```c\nx\n```\n",
    "```\n" * 20_000,
])
def test_pathological_answers_are_fast(text: str):
    import time

    start = time.perf_counter()
    extract_files(text)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("text", [
    "### Build/Install\n```bash\nmake\n```\n", "```text and/or\nx\n```\n", "```python 3.11\nx = 1\n```\n",
    "```cpp\n// see docs/\nint x;\n```\n",
])
def test_bare_tokens_without_a_file_extension_are_not_paths(text: str):
    assert extract_files(text)[0] == {}


def test_keyed_path_without_extension_is_accepted():
    assert one("```make path=Makefile\nall:\n```") == ("Makefile", "all:\n")
    assert one("```make\n# file: Makefile\nall:\n```") == ("Makefile", "all:\n")
