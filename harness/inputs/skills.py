"""Agent Skills: load a skill folder and validate it against the spec (REFERENCE §2).

A skill is a folder holding SKILL.md (YAML frontmatter, then a Markdown body) and
optionally references/, scripts/ and assets/.

On PyPI `skills-ref` (pinned 0.1.1 in pyproject.toml), the reference validator.
Read and tried on valid and broken skills (see tests/inputs/test_skills.py). Verdict:
sound for the frontmatter field rules, not for parsing, and incomplete, so we use
its rule function and parse and check the rest ourselves:

- Sound, so we call `skills_ref.validator.validate_metadata(frontmatter, dir)`:
  allowed keys, required name and description, name length / lowercase / hyphen
  rules / folder match (NFKC-normalised), description <= 1024, compatibility <= 500.
- Its parser is not sound, so we do not use it for the frontmatter: it splits
  SKILL.md on the first "---" anywhere, so `description: a --- b` is silently cut
  to "a"; and it parses with strictyaml, which refuses valid YAML that agents
  accept (flow mappings such as `metadata: {author: me}`). We split on "---" lines
  and parse with PyYAML (what agents use), refusing duplicate keys as strictyaml
  does. Where skills-ref's own parser would refuse a file we accept, we say so as
  a warning, since tools built on it will reject the skill.
- It accepts any Unicode letter or digit in `name` ("café" passes); the spec text
  says a-z, 0-9 and hyphens. We add a warning for names outside that set.
- It misses, so we add: `metadata` must be a string-to-string map, `license`,
  `compatibility` and `allowed-tools` must be strings, the body size (500 lines /
  ~5000 tokens, a warning), files the body references (references/x.md, scripts/
  y.py, relative Markdown links) must exist inside the skill folder, and
  references/ files must be UTF-8 text (they are inlined into prompts).
- Its messages carry no field key; `_key_for` maps them, and a test pins the
  mapping against the installed version.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from harness.common.errors import UserError
from harness.common.results import Finding
from harness.inputs.frontmatter import FrontmatterError, read_frontmatter, split_frontmatter

log = logging.getLogger(__name__)

SKILL_FILE = "SKILL.md"
ALLOWED_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
MAX_BODY_LINES = 500
MAX_BODY_TOKENS = 5000
CHARS_PER_TOKEN = 4
"""A rough, documented estimate (English prose runs ~4 chars per token for large-vocabulary
tokenizers). It undercounts code-heavy skills under small-vocabulary tokenizers: the shipped
h100-kernel-builder block is ~5,000 by this estimate and 7,3xx SmolLM2 prompt tokens
(measured in a local eval). Pass a real counter to `Skill.count_tokens` for exact figures."""


class Skill(BaseModel):
    """A loaded skill folder."""

    path: Path
    """The skill folder."""
    name: str
    description: str
    frontmatter: dict[str, Any]
    """The parsed YAML frontmatter, as written."""
    text: str
    """SKILL.md exactly as read (frontmatter included)."""
    body: str
    """SKILL.md after the frontmatter."""
    references: dict[str, str] = Field(default_factory=dict)
    """Every UTF-8 file under references/, keyed by path relative to the skill folder, sorted."""
    unreadable: list[str] = Field(default_factory=list)
    """Files under references/ left out because they are not UTF-8 text."""
    warnings: list[str] = Field(default_factory=list)
    """What loading accepted but a strict reader would not (unquoted frontmatter values)."""

    @property
    def sha256(self) -> str:
        """Identity of what the model sees: SKILL.md plus every references/ file."""
        h = hashlib.sha256()
        for rel, text in [(SKILL_FILE, self.text), *self.references.items()]:
            h.update(rel.encode() + b"\0" + text.encode() + b"\0")
        return h.hexdigest()

    def prompt_block(self) -> str:
        """SKILL.md followed by each references/ file inlined (DESIGN "Prompts"): a
        single-turn student cannot open files, so what SKILL.md links to is shown."""
        parts = [self.text.rstrip("\n")]
        for rel, text in self.references.items():
            parts.append(f'<file path="{rel}">\n{text.rstrip(chr(10))}\n</file>')
        return "\n\n".join(parts) + "\n"

    @property
    def size_chars(self) -> int:
        """Characters of the prompt block (SKILL.md and references/ together)."""
        return len(self.prompt_block())

    @property
    def estimated_tokens(self) -> int:
        """size_chars / CHARS_PER_TOKEN, rounded up: an estimate, labelled as such."""
        return math.ceil(self.size_chars / CHARS_PER_TOKEN)

    def count_tokens(self, counter: Callable[[str], int] | None = None) -> int:
        """Tokens of the prompt block by `counter` (a tokenizer), else the estimate."""
        return counter(self.prompt_block()) if counter else self.estimated_tokens


# --- parsing ------------------------------------------------------------------




def _skill_dir(path: str | Path) -> Path:
    """The skill folder; a path to SKILL.md itself is accepted. UserError when it is no folder."""
    path = Path(path)
    if path.is_file() and path.name.lower() == "skill.md":
        path = path.parent
    if not path.exists():
        raise UserError(f"{path}: no such skill folder")
    if not path.is_dir():
        raise UserError(f"{path}: not a folder (a skill is a folder holding {SKILL_FILE})")
    try:
        next(path.iterdir(), None)
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    return path


def _read_references(root: Path) -> tuple[dict[str, str], list[str]]:
    refs: dict[str, str] = {}
    unreadable: list[str] = []
    ref_dir = root / "references"
    if not ref_dir.is_dir():
        return refs, unreadable
    for file in sorted(p for p in ref_dir.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        try:
            refs[rel] = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            log.warning("%s: not UTF-8 text, left out of the prompt block", file)
            unreadable.append(rel)
    return refs, unreadable


def load_skill(path: str | Path) -> Skill:
    """Load a skill folder. Raises UserError (one line) when SKILL.md is missing,
    unreadable or has no parseable frontmatter, or lacks a string name / description.
    Loading does not validate: call validate_skill for the spec checks."""
    root = _skill_dir(path)
    skill_md = root / SKILL_FILE
    try:
        text = skill_md.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{root}: no {SKILL_FILE} in the skill folder") from None
    except UnicodeDecodeError:
        raise UserError(f"{skill_md}: not UTF-8 text") from None
    except OSError as err:
        raise UserError(f"{skill_md}: cannot read: {err.strerror}") from None
    try:
        frontmatter, body, warnings = read_frontmatter(text)
    except FrontmatterError as err:
        raise UserError(f"{skill_md}: {err}") from None
    for warning in warnings:
        log.warning("%s: %s", skill_md, warning)
    for key in ("name", "description"):
        value = frontmatter.get(key)
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{skill_md}: {key}: missing or not a non-empty string")
    refs, unreadable = _read_references(root)
    return Skill(path=root, name=frontmatter["name"].strip(), description=frontmatter["description"].strip(),
                 frontmatter=frontmatter, text=text, body=body, references=refs, unreadable=unreadable,
                 warnings=warnings)


# --- validation ---------------------------------------------------------------


def _key_for(message: str) -> str:
    """The frontmatter key a skills-ref 0.1.1 message is about (pinned by a test)."""
    lowered = message.lower()
    if lowered.startswith("missing required field in frontmatter:"):
        return message.rsplit(":", 1)[1].strip()
    quoted = re.match(r"field '([\w-]+)'", lowered)
    if quoted:
        return quoted.group(1)
    if lowered.startswith(("skill name", "directory name")):
        return "name"
    for key in ("description", "compatibility"):
        if lowered.startswith(key):
            return key
    return "frontmatter"


def _spec_findings(frontmatter: dict[str, Any], root: Path) -> list[Finding]:
    """The field rules, by skills-ref."""
    from skills_ref.validator import validate_metadata

    extra = ", ".join(sorted(str(k) for k in frontmatter if k not in ALLOWED_KEYS))
    return [Finding(severity="error", key=extra if msg.startswith("Unexpected fields") and extra else _key_for(msg),
                    reason=msg)
            for msg in validate_metadata(frontmatter, root)]


def _extra_frontmatter_findings(frontmatter: dict[str, Any]) -> list[Finding]:
    """What skills-ref misses in the frontmatter."""
    found: list[Finding] = []
    name = frontmatter.get("name")
    if isinstance(name, str) and not name.isascii():  # skills-ref accepts any Unicode letter
        found.append(Finding(severity="warning", key="name",
                             reason=f"{name.strip()!r} uses characters outside a-z, 0-9 and '-': "
                                    "the spec's portable set; some agents will refuse it"))
    for key in ("license", "compatibility", "allowed-tools"):
        if key in frontmatter and not isinstance(frontmatter[key], str):
            hint = " (space-separated, not a list)" if key == "allowed-tools" else ""
            found.append(Finding(severity="error", key=key,
                                 reason=f"must be a string{hint}, got {type(frontmatter[key]).__name__}"))
    if "metadata" in frontmatter:
        meta = frontmatter["metadata"]
        if not isinstance(meta, dict):
            found.append(Finding(severity="error", key="metadata",
                                 reason=f"must be a map of strings to strings, got {type(meta).__name__}"))
        else:
            for k, v in meta.items():
                if not isinstance(k, str) or not isinstance(v, str):
                    hint = "" if isinstance(v, (dict, list)) else " (quote it)"
                    found.append(Finding(severity="error", key=f"metadata.{k}",
                                         reason=f"keys and values must be strings, got {type(v).__name__} {v!r}{hint}"))
    return found


def _skills_ref_parse_findings(skill_md: Path, frontmatter: dict[str, Any]) -> list[Finding]:
    """Warnings where skills-ref's own parser refuses or misreads a file we read fine:
    tools built on it will reject the skill or see other text."""
    from skills_ref.errors import ParseError
    from skills_ref.parser import parse_frontmatter

    try:
        theirs, _ = parse_frontmatter(skill_md.read_text(encoding="utf-8"))
    except ParseError as err:
        first = str(err).splitlines()[0]
        return [Finding(severity="warning", key="frontmatter",
                        reason=f"skills-ref's parser refuses this frontmatter ({first}); tools built on it will too")]
    found = []
    for key in ("name", "description"):
        ours = frontmatter.get(key)
        if isinstance(ours, str) and str(theirs.get(key, "")).strip() != ours.strip():
            found.append(Finding(severity="warning", key=key,
                                 reason=f"skills-ref's parser reads this as {str(theirs.get(key, ''))[:60]!r}"
                                        " (a '---' inside the frontmatter?)"))
    return found


_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_BARE_PATH = re.compile(r"(?<![\w/.-])((?:references|scripts|assets)/[\w./-]*[\w])")


def referenced_paths(body: str) -> list[str]:
    """Relative paths the body points at: Markdown links anywhere, and bare
    references/ scripts/ assets/ paths outside fenced code blocks (code blocks show
    other projects' files, e.g. a kernel project's own scripts/)."""
    found: list[str] = []
    for target in _MD_LINK.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            continue  # URL, mailto:, in-page anchor, absolute path
        target = target.split("#", 1)[0]
        if target:
            found.append(target)
    found.extend(_BARE_PATH.findall(_FENCE.sub("", body)))
    return list(dict.fromkeys(p.rstrip(".") for p in found))


def _reference_findings(root: Path, body: str) -> list[Finding]:
    found: list[Finding] = []
    base = root.resolve()
    for rel in referenced_paths(body):
        target = (root / rel).resolve()
        if not target.is_relative_to(base):
            found.append(Finding(severity="error", key=rel, reason="points outside the skill folder"))
        elif not target.exists():
            found.append(Finding(severity="error", key=rel, reason="referenced in SKILL.md but missing"))
    return found


def _body_findings(body: str) -> list[Finding]:
    found: list[Finding] = []
    lines = len(body.splitlines())
    tokens = math.ceil(len(body) / CHARS_PER_TOKEN)
    if lines > MAX_BODY_LINES:
        found.append(Finding(severity="warning", key="body",
                             reason=f"{lines} lines (spec advice: under {MAX_BODY_LINES}; move detail to references/)"))
    if tokens > MAX_BODY_TOKENS:
        found.append(Finding(severity="warning", key="body",
                             reason=f"~{tokens} tokens (spec advice: under {MAX_BODY_TOKENS}; move detail to references/)"))
    if not body.strip():
        found.append(Finding(severity="warning", key="body", reason="empty: the skill teaches nothing"))
    return found


def validate_skill(path: str | Path) -> list[Finding]:
    """Every spec finding for a skill folder (errors, warnings). A missing or
    unreadable folder raises UserError; anything wrong inside it is a finding."""
    root = _skill_dir(path)
    skill_md = root / SKILL_FILE
    if not skill_md.is_file():
        other = [p.name for p in root.iterdir() if p.name.lower() == "skill.md"]
        hint = f" (found {other[0]}; the spec name is {SKILL_FILE})" if other else ""
        return [Finding(severity="error", key=SKILL_FILE, reason=f"missing{hint}")]
    try:
        text = skill_md.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [Finding(severity="error", key=SKILL_FILE, reason="not UTF-8 text")]
    except OSError as err:
        raise UserError(f"{skill_md}: cannot read: {err.strerror}") from None
    try:
        frontmatter, body, warnings = read_frontmatter(text)
    except FrontmatterError as err:
        return [Finding(severity="error", key="frontmatter", reason=str(err))]

    findings = [Finding(severity="warning", key=w.split(":", 1)[0], reason=w.split(": ", 1)[1]) for w in warnings]
    findings += _spec_findings(frontmatter, root)
    findings += _extra_frontmatter_findings(frontmatter)
    findings += _skills_ref_parse_findings(skill_md, frontmatter)
    findings += _body_findings(body)
    findings += _reference_findings(root, body)
    _, unreadable = _read_references(root)
    findings += [Finding(severity="warning", key=rel, reason="not UTF-8 text: left out of the prompt block")
                 for rel in unreadable]
    return findings


__all__ = ["Skill", "load_skill", "validate_skill", "split_frontmatter", "referenced_paths",
           "ALLOWED_KEYS", "CHARS_PER_TOKEN"]
