"""Agent mode's prompts: one system prompt for every call of an arm, then the task.

Both arms get the same system prompt, the same tools and the same task; the with-skill arm
adds only the skill lines, and (on-demand) the skill's files under skill/:
- on-demand: the skill's name, description and location appended to the system prompt,
  in the <available_skills> form Agent Skills clients use; the model reads SKILL.md when
  it decides to.
- inline: the skill block in front of the task in the first message, exactly as one-shot
  puts it (SKILL.md and references/ inlined).
The system prompt (with the skill lines, on-demand) comes first and is byte-identical across
every case and call of an arm, so providers' prefix caches can serve it (issue 20).
"""

from __future__ import annotations

from typing import Literal

from harness.inputs.cases import Case
from harness.prompts.build import SKILL_FOOTER, SKILL_HEADER, Prompt, task_text

SkillDelivery = Literal["inline", "on-demand"]
SKILL_DELIVERIES: tuple[SkillDelivery, ...] = ("inline", "on-demand")

AGENT_SYSTEM_PROMPT = (
    "You are an expert GPU kernel engineer working in a workspace through tools: read_file, "
    "write_file, list_files, run_checks and submit. There is no shell. Write the files the task "
    "asks for with write_file, check them with run_checks, fix what it reports, and call submit "
    "when you are done: the workspace as it is then is graded. When the task asks a question, "
    "answer it in your final message (and in the file the task names, if it names one)."
)


def skill_lines(name: str, description: str) -> str:
    """The on-demand skill listing appended to the system prompt of the with-skill arm."""
    return ("\n\nSkills are available in the workspace. Read a skill's SKILL.md with read_file when it "
            "is relevant to the task; the files it mentions are read the same way, relative to its folder.\n"
            "<available_skills>\n<skill>\n"
            f"<name>{name}</name>\n<description>{description}</description>\n<location>skill/SKILL.md</location>\n"
            "</skill>\n</available_skills>")


def build_agent_prompt(case: Case, skill: dict | None, *, delivery: SkillDelivery = "on-demand",
                       device: str = "cuda") -> Prompt:
    """skill is the run's skill record (name, description, block) in the with-skill arm, None
    in the baseline. `user` is the first message of the trajectory."""
    task = task_text(case, device, agent=True)
    if skill is None:
        return Prompt(system=AGENT_SYSTEM_PROMPT, user=task)
    if delivery == "inline":
        return Prompt(system=AGENT_SYSTEM_PROMPT, user=f"{SKILL_HEADER}{skill['block']}{SKILL_FOOTER}{task}")
    return Prompt(system=AGENT_SYSTEM_PROMPT + skill_lines(skill["name"], skill.get("description", "")), user=task)


def skill_folder_in(delivery: SkillDelivery) -> bool:
    """Whether the with-skill arm's workspace holds skill/ (on-demand only: inline already
    shows every file of the skill in the first message)."""
    return delivery == "on-demand"


__all__ = ["AGENT_SYSTEM_PROMPT", "SKILL_DELIVERIES", "SkillDelivery", "build_agent_prompt", "skill_folder_in",
           "skill_lines"]
