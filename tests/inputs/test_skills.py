"""Skill loading and spec validation (harness/inputs/skills.py) and `kernelgrade validate`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.common.errors import UserError
from harness.inputs.skills import CHARS_PER_TOKEN, load_skill, referenced_paths, validate_skill

FIXTURES = Path(__file__).parents[1] / "fixtures" / "skills"
SHIPPED = Path(__file__).parents[2] / "skills"


def _errors(findings):
    return [(f.key, f.reason) for f in findings if f.severity == "error"]


def test_valid_fixture_has_no_findings():
    assert validate_skill(FIXTURES / "valid-skill") == []


# fixture folder -> (severity, key, a fragment of the reason)
BROKEN = {
    "bad-unknown-key": ("error", "version", "Unexpected fields"),
    "bad-name-mismatch": ("error", "name", "must match skill name"),
    "Bad-Upper": ("error", "name", "must be lowercase"),
    "bad--double": ("error", "name", "consecutive hyphens"),
    "bad-no-description": ("error", "description", "Missing required field"),
    "bad-long-description": ("error", "description", "1024"),
    "bad-long-compatibility": ("error", "compatibility", "500"),
    "bad-long-body": ("warning", "body", "520 lines"),
    "bad-metadata": ("error", "metadata.version", "must be strings"),
    "bad-missing-ref": ("error", "references/build.md", "missing"),
    "bad-escape-ref": ("error", "../../etc/passwd", "outside the skill folder"),
    "bad-no-frontmatter": ("error", "frontmatter", "does not start"),
    "bad-yaml": ("error", "frontmatter", "invalid YAML at line 4"),
    "bad-duplicate-key": ("error", "frontmatter", "duplicate key 'name'"),
    "bad-tools-list": ("error", "allowed-tools", "must be a string"),
    "bad-no-skill-md": ("error", "SKILL.md", "missing"),
    "warn-flow-metadata": ("warning", "frontmatter", "skills-ref's parser refuses"),
    "warn-dashes-in-description": ("warning", "description", "reads this as 'before'"),
}


@pytest.mark.parametrize("folder", sorted(BROKEN))
def test_each_broken_fixture_gives_its_finding(folder):
    severity, key, fragment = BROKEN[folder]
    findings = validate_skill(FIXTURES / folder)
    assert any(f.severity == severity and f.key == key and fragment in f.reason for f in findings), findings
    if severity == "warning":  # warnings alone must not make a skill invalid
        assert _errors(findings) == []


def test_every_fixture_folder_is_covered():
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert folders == set(BROKEN) | {"valid-skill"}


def test_metadata_nested_map_and_second_missing_ref_are_reported_too():
    keys = [k for k, _ in _errors(validate_skill(FIXTURES / "bad-metadata"))]
    assert keys == ["metadata.version", "metadata.nested"]
    keys = [k for k, _ in _errors(validate_skill(FIXTURES / "bad-missing-ref"))]
    assert keys == ["references/build.md", "scripts/gen.py"]


def test_non_ascii_name_is_a_warning_that_skills_ref_alone_misses(tmp_path):
    from skills_ref import validate as skills_ref_validate

    skill = tmp_path / "noël"
    skill.mkdir()
    (skill / "SKILL.md").write_text("---\nname: noël\ndescription: d\n---\nBody.\n", encoding="utf-8")
    assert skills_ref_validate(skill) == []  # the reference validator accepts it
    findings = validate_skill(skill)
    assert [(f.severity, f.key) for f in findings] == [("warning", "name")]


def test_body_token_warning(tmp_path):
    skill = tmp_path / "wordy"
    skill.mkdir()
    body = "word " * (5000 * CHARS_PER_TOKEN // 5 + 10)  # one line, > 5000 estimated tokens
    (skill / "SKILL.md").write_text(f"---\nname: wordy\ndescription: d\n---\n{body}\n")
    findings = validate_skill(skill)
    assert [(f.severity, f.key) for f in findings] == [("warning", "body")]
    assert "tokens" in findings[0].reason


def test_skills_ref_message_keys_are_pinned():
    """_key_for maps skills-ref's untyped messages to keys; this breaks if its wording changes."""
    from skills_ref.validator import validate_metadata

    from harness.inputs.skills import _key_for

    cases = {
        "name": {"name": "Bad_Name", "description": "d"},
        "description": {"name": "x", "description": "d" * 2000},
        "compatibility": {"name": "x", "description": "d", "compatibility": "c" * 600},
    }
    for key, meta in cases.items():
        messages = validate_metadata(meta, Path("x"))
        assert messages and all(_key_for(m) == key for m in messages), (key, messages)
    assert _key_for("Missing required field in frontmatter: name") == "name"


def test_referenced_paths_skip_urls_anchors_and_code_blocks():
    body = (
        "See [a](references/a.md#part), [web](https://x.org/references/z.md), [top](#top),\n"
        "and scripts/run.py. Also ![img](assets/fig.png).\n"
        "```bash\nbash scripts/in_code.sh\n```\n"
    )
    assert referenced_paths(body) == ["references/a.md", "assets/fig.png", "scripts/run.py"]


def test_load_skill_reads_references_and_builds_the_prompt_block():
    skill = load_skill(FIXTURES / "valid-skill")
    assert skill.name == "valid-skill"
    assert skill.frontmatter["metadata"] == {"author": "kernelgrade-tests", "version": "1.0"}
    assert list(skill.references) == ["references/details.md"]
    block = skill.prompt_block()
    assert block.startswith("---\nname: valid-skill")
    skill_md_at = block.index("# Valid skill")
    ref_at = block.index('<file path="references/details.md">\n# Details')
    assert skill_md_at < ref_at
    assert skill.size_chars == len(block)
    assert skill.estimated_tokens == -(-len(block) // CHARS_PER_TOKEN)
    assert skill.count_tokens(lambda text: len(text.split())) == len(block.split())
    assert "scripts/check.sh" in block and "echo ok" not in block  # only references/ is inlined


def test_sha256_covers_references(tmp_path):
    copy = tmp_path / "valid-skill"
    shutil.copytree(FIXTURES / "valid-skill", copy)
    before = load_skill(copy).sha256
    assert before == load_skill(FIXTURES / "valid-skill").sha256
    (copy / "references" / "details.md").write_text("# Details\n\nChanged.\n")
    assert load_skill(copy).sha256 != before


def test_load_skill_accepts_the_skill_md_path():
    assert load_skill(FIXTURES / "valid-skill" / "SKILL.md").name == "valid-skill"


@pytest.mark.parametrize(
    "folder, fragment",
    [
        ("bad-no-skill-md", "no SKILL.md"),
        ("bad-no-frontmatter", "does not start with a '---'"),
        ("bad-yaml", "invalid YAML at line 4"),
        ("bad-no-description", "description: missing"),
    ],
)
def test_load_skill_errors_are_one_line(folder, fragment):
    with pytest.raises(UserError) as info:
        load_skill(FIXTURES / folder)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such skill folder"):
        validate_skill(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        validate_skill(tmp_path / "file.txt")


def test_shipped_skills_validate_clean():
    skills = [p for p in SHIPPED.iterdir() if (p / "SKILL.md").exists()]
    assert skills, "no shipped skill found under skills/"
    for skill in skills:
        assert validate_skill(skill) == [], skill


# --- the command ----------------------------------------------------------------


def test_validate_command_exit_codes_and_output(capsys):
    assert main(["validate", str(FIXTURES / "valid-skill")]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", str(FIXTURES / "bad-name-mismatch")]) == 1
    out = capsys.readouterr().out
    assert "error" in out and "name" in out and "must match skill name" in out
    assert main(["validate", str(FIXTURES / "bad-long-body")]) == 0  # warnings only
    assert "warning" in capsys.readouterr().out
    assert main(["validate", str(FIXTURES / "does-not-exist")]) == 2
    assert "no such skill folder" in capsys.readouterr().err


def test_validate_command_json(capsys):
    assert main(["validate", "--json", str(FIXTURES / "bad-metadata")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False
    assert [f["key"] for f in data["findings"]] == ["metadata.version", "metadata.nested"]
    assert main(["validate", "--json", str(FIXTURES / "valid-skill")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is True and data["findings"] == [] and data["estimated_tokens"] > 0


def test_frontmatter_split_only_on_column_zero_markers():
    from harness.inputs.skills import split_frontmatter

    text = "---\nname: x\ndescription: |\n  first\n  ---\n  after\n---\nBody ---\n"
    data, body = split_frontmatter(text)
    assert data["description"] == "first\n---\nafter\n"
    assert body == "Body ---\n"


def test_shipped_skill_covers_the_text_suite():
    """Coverage, not a score: every marker the H100 text suite asks for is taught somewhere in
    the skill's prompt block (SKILL.md + references), so a with-skill failure is the model's."""
    import json

    block = load_skill(SHIPPED / "h100-kernel-builder").prompt_block()
    cases = json.loads((SHIPPED.parent / "cases" / "h100-text.json").read_text())["cases"]
    missing = [c["expected"]["contains"] for c in cases if c["expected"]["contains"] not in block]
    assert missing == []
