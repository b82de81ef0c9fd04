"""`kernelgrade validate SKILL_DIR`: check a skill folder against the Agent Skills spec."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

from harness.common.errors import UserError
from harness.inputs.skills import load_skill, validate_skill

_STYLE = {"error": "red", "warning": "yellow", "note": "cyan"}


def validate(
    skill_dir: str = typer.Argument(..., metavar="SKILL_DIR", help="The skill folder (holding SKILL.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Check a skill against the Agent Skills spec.

    Frontmatter keys, name and folder, description and compatibility lengths, metadata, body
    size, referenced files.

    Prints each finding with its severity, key and reason. Exit codes: 0 no errors
    (warnings allowed), 1 the skill has errors, 2 SKILL_DIR is missing or unreadable.
    """
    findings = validate_skill(skill_dir)
    errors = [f for f in findings if f.severity == "error"]
    size: dict[str, int | str] = {}
    if not errors:
        try:
            skill = load_skill(skill_dir)
            size = {"name": skill.name, "sha256": skill.sha256, "size_chars": skill.size_chars,
                    "estimated_tokens": skill.estimated_tokens, "references": len(skill.references)}
        except UserError:
            pass  # validate_skill already reported why it cannot load
    if as_json:
        typer.echo(json.dumps({"skill": skill_dir, "valid": not errors,
                          "findings": [f.model_dump() for f in findings], **size}, indent=2))
    else:
        console = Console(highlight=False)
        for f in findings:
            style = _STYLE[f.severity]
            console.print(f"[{style}]{f.severity:<7}[/{style}] [bold]{escape(f.key)}[/bold]: {escape(f.reason)}")
        warnings = len(findings) - len(errors)
        if errors:
            console.print(f"[red]invalid[/red] {escape(skill_dir)}: {len(errors)} error(s), {warnings} warning(s)")
        else:
            extra = ""
            if size:
                extra = (f" — {size['name']}, {size['size_chars']} chars (~{size['estimated_tokens']} tokens, "
                         f"chars/4 estimate) with {size['references']} reference file(s)")
            console.print(f"[green]valid[/green] {escape(skill_dir)}: {warnings} warning(s){escape(extra)}")
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
