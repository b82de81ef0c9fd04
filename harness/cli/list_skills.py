"""`kernelgrade list`: the skills in a folder, as upskill's `list` shows them."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)


def list_cmd(
    skills_dir: Path = typer.Option(Path("skills"), "--dir", "-d", help="The folder holding skill folders "
                                    "(upskill's -d); default ./skills, else the skills kernelgrade ships."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Every file of each skill: references/, "
                                 "scripts/, and its tests (skill_meta.json)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per skill on stdout."),
) -> None:
    """List the skills in a folder: name, description, size and tests.

    Size is the skill block kernelgrade sends (SKILL.md plus references/, chars/4), where upskill
    counts words x 1.3; a skill that does not load is listed with why."""
    from rich.markup import escape
    from rich.tree import Tree

    from harness.cli.render import console
    from harness.common.errors import UserError
    from harness.inputs.skill_meta import read_skill_meta
    from harness.inputs.skills import load_skill

    if not skills_dir.is_dir() and skills_dir == Path("skills"):
        from harness.common.paths import asset_dir

        skills_dir = asset_dir("skills")  # no skills/ here: the skills kernelgrade ships
    if not skills_dir.is_dir():
        raise UserError(f"{skills_dir}: no such folder (--dir)")
    rows = []
    for folder in sorted(p for p in skills_dir.iterdir() if (p / "SKILL.md").is_file()):
        row: dict = {"path": str(folder), "name": folder.name}
        try:
            skill = load_skill(folder)
            meta = read_skill_meta(folder)
            row |= {"name": skill.name, "description": skill.description, "estimated_tokens": skill.estimated_tokens,
                    "references": list(skill.references),
                    "scripts": sorted(str(p.relative_to(folder)) for p in (folder / "scripts").rglob("*") if p.is_file())
                    if (folder / "scripts").is_dir() else [],
                    "tests": len(meta.tests) if meta else 0}
        except UserError as err:
            row["problem"] = str(err)
        rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no skills in {escape(str(skills_dir))}", highlight=False)
        return
    tree = Tree(f"[bold]Skills in {escape(str(skills_dir))}[/bold]")
    for row in rows:
        if "problem" in row:
            tree.add(f"[bold]{escape(row['name'])}[/bold] [red]{escape(row['problem'])}[/red]")
            continue
        branch = tree.add(f"[bold]{escape(row['name'])}[/bold] [dim](~{row['estimated_tokens']:,} tokens, "
                          f"{row['tests']} test(s))[/dim]")
        branch.add(f"[dim]{escape(row['description'][:100])}[/dim]")
        if verbose:
            for rel in row["references"]:
                branch.add(escape(rel))
            for rel in row["scripts"]:
                branch.add(escape(rel))
            if row["tests"]:
                branch.add(f"skill_meta.json ({row['tests']} test(s))")
    console.print(tree)
    total = sum(r.get("estimated_tokens", 0) for r in rows)
    console.print(f"[dim]{len(rows)} skill(s), ~{total:,} tokens in all (chars/4)[/dim]")
