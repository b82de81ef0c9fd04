"""Helpers for the agent-mode tests: the proposed loop's shape without the store."""

from __future__ import annotations

from pathlib import Path

from harness.agent.conversation import Conversation, ToolResultStep, UserStep, step_from_json, step_to_json
from harness.agent.dispatch import execute_call
from harness.agent.providers import AgentRequest
from harness.agent.workspace import Workspace

REPO = Path("/work/main")
for parent in Path(__file__).resolve().parents:
    if (parent / "harness" / "agent").is_dir():
        REPO = parent
        break

SKILL_FILES = {"SKILL.md": "---\nname: demo\ndescription: demo skill\n---\nUse cuda-capabilities 9.0.\n",
               "references/notes.md": "NOTES\n"}


def mini_loop(client, ws: Workspace, checks, *, system: str = "sys", task: str = "task",
              max_turns: int = 12, stored: list[str] | None = None) -> tuple[Conversation, str]:
    """The shape of the proposed loop, without the store: every step is serialised (the
    'stored' list stands for the table) before the next model call."""
    conv = Conversation(system=system, steps=[UserStep(text=task)])
    stored = stored if stored is not None else []
    stored.append(step_to_json(conv.steps[0]))
    while conv.turns() < max_turns:
        step = client.complete(AgentRequest(conversation=conv, max_tokens=256, temperature=0.0))
        conv.steps.append(step)
        stored.append(step_to_json(step))
        if not step.tool_calls:
            return conv, "final_message"
        ended = False
        for call in step.tool_calls:
            result, ends = execute_call(call, ws, checks)
            conv.steps.append(result)
            stored.append(step_to_json(result))
            ended = ended or ends
        if ended:
            return conv, "submitted"
    return conv, "ran_out"


def restored(stored: list[str], system: str = "sys") -> Conversation:
    return Conversation(system=system, steps=[step_from_json(s) for s in stored])


def results(conv: Conversation) -> list[ToolResultStep]:
    return [s for s in conv.steps if isinstance(s, ToolResultStep)]
