"""Frontmatter as upskill writes it: unquoted values with ': ' are read as one string with a
warning that says how to quote; strict YAML is unchanged; real errors still fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.inputs.frontmatter import FrontmatterError, read_frontmatter, split_frontmatter
from harness.inputs.skills import load_skill, validate_skill

UPSKILL = Path(__file__).resolve().parents[1] / "fixtures" / "upskill" / "vectorized-loads"


def test_strict_yaml_is_read_as_before_without_warnings() -> None:
    data, body, warnings = read_frontmatter('---\nname: x\ndescription: "a: b"\n---\nbody\n')
    assert data == {"name": "x", "description": "a: b"} and body == "body\n" and warnings == []


def test_an_unquoted_colon_is_one_string_with_a_quoting_hint() -> None:
    text = "---\nname: x\ndescription: Loads. Use when: writing kernels\n---\n# T\n"
    with pytest.raises(FrontmatterError):
        split_frontmatter(text)  # the strict reader still refuses it
    data, body, warnings = read_frontmatter(text)
    assert data["description"] == "Loads. Use when: writing kernels" and data["name"] == "x"
    assert len(warnings) == 1 and warnings[0].startswith("description:")
    assert 'description: "Loads. Use when: writing kernels"' in warnings[0]


def test_nested_mappings_are_left_to_yaml() -> None:
    text = "---\nname: x\ndescription: A: b\nmetadata:\n  author: me\n---\n"
    data, _, warnings = read_frontmatter(text)
    assert data["metadata"] == {"author": "me"} and data["description"] == "A: b" and len(warnings) == 1


@pytest.mark.parametrize("text", [
    "---\nname: [unclosed\n---\n",            # broken flow sequence: no plain-scalar repair applies
    "---\nname: x\nname: y\n---\n",           # duplicate keys stay refused
    "---\n- a\n- b\n---\n",                   # not a mapping
])
def test_real_errors_still_fail(text: str) -> None:
    with pytest.raises(FrontmatterError):
        read_frontmatter(text)


def test_an_upskill_skill_folder_loads_and_validates_with_a_warning() -> None:
    skill = load_skill(UPSKILL)
    assert skill.description == "Vectorized loads for H100 kernels. Use when: writing elementwise CUDA kernels"
    assert skill.warnings and "Quote it" in skill.warnings[0]
    findings = validate_skill(UPSKILL)
    assert not [f for f in findings if f.severity == "error"], findings
    assert any(f.key == "description" and f.severity == "warning" and "Quote it" in f.reason for f in findings)
