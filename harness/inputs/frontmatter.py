"""SKILL.md's frontmatter: strict YAML first, then the reading upskill and Claude Code apply to
unquoted values (`description: Vectorized loads. Use when: writing kernels`), with a warning
that says how to quote them.

upskill's `Skill.save()` writes `key: value` lines without quoting, so a value holding ": "
is not strict YAML; Claude Code and upskill still read it as one string. kernelgrade accepts
exactly that repair (a top-level plain scalar that strict YAML refused) and nothing looser.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

class FrontmatterError(ValueError):
    """SKILL.md has no parseable frontmatter; the message is one line."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """(frontmatter, body), strict YAML. The frontmatter sits between a first line `---` and
    the next line that is `---`; anything else raises FrontmatterError."""
    raw, body = _blocks(text)
    return _parse(raw), body


def _blocks(text: str) -> tuple[str, str]:
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        raise FrontmatterError("does not start with a '---' frontmatter line")
    for end in range(1, len(lines)):
        if lines[end].rstrip() == "---":  # at column 0, as a YAML document marker
            break
    else:
        raise FrontmatterError("frontmatter is not closed by a '---' line")
    return "".join(lines[1:end]), "".join(lines[end + 1:])


def _parse(raw: str) -> dict[str, Any]:
    try:
        data = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        where = f" at line {mark.line + 2}" if mark is not None else ""  # +2: 0-based, after '---'
        raise FrontmatterError(f"invalid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontmatterError(f"frontmatter must be a YAML mapping, got {type(data).__name__}")
    return data


#: A top-level `key: value` line whose value is a plain (unquoted, non-block) scalar.
_PLAIN_LINE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*):[ \t]+(?P<value>[^'\"|>\[{&*!#%@`\s].*?)[ \t]*$")


def read_frontmatter(text: str) -> tuple[dict[str, Any], str, list[str]]:
    """(frontmatter, body, warnings). Strict YAML when it parses; otherwise each top-level
    plain value is read as one string, as upskill and Claude Code read it, and a warning
    per repaired key says how to quote it. Anything else still raises FrontmatterError."""
    raw, body = _blocks(text)
    try:
        return _parse(raw), body, []
    except FrontmatterError as strict_error:
        repaired, warnings = [], []
        for line in raw.splitlines(keepends=True):
            m = _PLAIN_LINE.match(line.rstrip("\r\n"))
            if m and _not_one_yaml_scalar(m["key"], m["value"]):
                value = m["value"]
                repaired.append(f"{m['key']}: {_quoted(value)}\n")
                warnings.append(f"{m['key']}: the unquoted value holds YAML syntax (e.g. ': '), so it is not "
                                f"strict YAML; read as one string, as upskill and Claude Code do. Quote it: "
                                f"{m['key']}: {_quoted(value)}")
            else:
                repaired.append(line)
        if not warnings:
            raise strict_error
        try:
            return _parse("".join(repaired)), body, warnings
        except FrontmatterError:
            raise strict_error from None


def _not_one_yaml_scalar(key: str, value: str) -> bool:
    """Does strict YAML fail on `key: value`, or read it as something other than that string?"""
    try:
        data = yaml.load(f"{key}: {value}\n", Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError:
        return True
    return not (isinstance(data, dict) and isinstance(data.get(key), str) and data[key] == value)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["FrontmatterError", "read_frontmatter", "split_frontmatter"]
