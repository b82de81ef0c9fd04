"""One agent trial: call the model, run its tool calls, store every step, grade the end.

Durability (issue 17): each step is one row in agent_steps, committed before the next
model call. A resumed trial reads its rows back, rebuilds the workspace in a fresh folder
by replaying the stored writes (a kill may have left the old folder mid-write), runs the
calls of the last turn whose results were not stored, and goes on. No model call is made
twice; a tool call runs again only when its result was never stored. The end of a
trajectory is a row of its own (EndStep), written before the final grade, so a trial
killed while being graded is graded again without a model call.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from pydantic import BaseModel

from harness.agent.checks import WorkspaceChecks, grade_workspace
from harness.agent.conversation import (AnyStep, AssistantStep, Conversation, EndStep, Outcome, ToolResultStep,
                                        UserStep, step_from_json, step_to_json)
from harness.agent.dispatch import error_result, execute_call, replay_writes
from harness.agent.providers import AgentRequest
from harness.agent.tools import CheckLevel
from harness.agent.workspace import Workspace
from harness.checks.base import GradeOptions
from harness.common.results import Device
from harness.inputs.cases import Case
from harness.models.base import Completion, ModelCallError
from harness.prompts.build import Prompt
from harness.scoring.grade import Grade
from harness.store.db import Store, TrialRecord, now

log = logging.getLogger(__name__)

CONTEXT_FULL = re.compile(r"context (window|length)|maximum context|prompt is too long|context_length_exceeded"
                          r"|too many tokens|exceeds? (the )?context", re.I)
"""How providers say the conversation no longer fits: the trial ran out of context."""

NOT_RUN = "not run: submit ended the trial"


class AgentClient(Protocol):
    provider: str
    model: str

    def complete(self, request: AgentRequest) -> AssistantStep: ...


class AgentSettings(BaseModel):
    """The limits and grading settings of one trial, from the run's options and its case."""

    max_turns: int = 12
    max_trial_tokens: int | None = None
    """Input plus output tokens over all the trial's model calls; None: no budget."""
    max_tokens: int = 4096
    """Output tokens per model call (lowered to what the budget has left)."""
    temperature: float | None = 1.0
    level: CheckLevel
    device: Device


@dataclass
class AgentTrial:
    store: Store
    trial: TrialRecord
    case: Case
    client: AgentClient
    prompt: Prompt
    skill_files: dict[str, str] | None
    """The with-skill arm's skill/ (on-demand delivery); None: no skill/ folder."""
    settings: AgentSettings
    folder: Path
    """The trial's artifacts folder; each session works in a fresh subfolder of it."""
    options: GradeOptions = field(default_factory=GradeOptions)
    on_turn: Callable[[AssistantStep], None] = lambda step: None
    """Called after each stored model turn (cost accounting for --max-cost)."""
    should_stop: Callable[[], bool] = lambda: False
    """Checked before each model call: True leaves the trial pending (resumable)."""
    request_record: dict = field(default_factory=dict)
    grade: Callable[..., tuple[Grade, dict[str, bytes]]] = grade_workspace
    """How the workspace is graded (run_checks and the end); benchmarks/agent_overhead.py stubs it."""


class TrialEnd(BaseModel):
    outcome: Outcome
    grade: Grade
    completion: Completion


def load_conversation(store: Store, trial_id: int, system: str) -> Conversation:
    return Conversation(system=system, steps=[step_from_json(r.body) for r in store.agent_steps(trial_id)])


class _Run:
    def __init__(self, t: AgentTrial, conv: Conversation, ws: Workspace, checks: WorkspaceChecks) -> None:
        self.t, self.conv, self.ws, self.checks = t, conv, ws, checks

    def store(self, step: AnyStep) -> None:
        seq = len(self.conv.steps)
        kw: dict = {}
        if isinstance(step, AssistantStep):
            kw = {"usage": (step.usage.input_tokens, step.usage.output_tokens, step.usage.cached_tokens),
                  "calls": step.attempts}
        elif isinstance(step, ToolResultStep):
            kw = {"call_id": step.call_id, "tool": step.name, "is_error": step.is_error}
        self.t.store.add_agent_step(self.t.trial.id, seq, role=step.role, body=step_to_json(step), **kw)
        self.conv.steps.append(step)

    def run_calls(self, step: AssistantStep) -> bool:
        """Run the calls of `step` that have no stored result, storing each; True once submit ran."""
        done = {s.call_id: s for s in self.conv.steps if isinstance(s, ToolResultStep)}
        ended = any(done[c.id].name == "submit" and not done[c.id].is_error for c in step.tool_calls if c.id in done)
        for call in step.tool_calls:
            if call.id in done:
                continue
            if ended:
                result = error_result(call, NOT_RUN)
            else:
                result, ends = execute_call(call, self.ws, self.checks)
                ended = ended or ends
            self.store(result)
        return ended

    def end(self, outcome: Outcome, detail: str = "") -> None:
        self.store(EndStep(outcome=outcome, detail=detail))

    def go(self) -> str | None:
        """Drive the trajectory to its end; None when it ended, else "error" or "stopped"."""
        s = self.t.settings
        last = next((x for x in reversed(self.conv.steps) if isinstance(x, AssistantStep)), None)
        if last is not None and self.run_calls(last):
            return self.end("submitted")
        while True:
            if last is not None and not last.tool_calls:
                return self.end("final_message")
            if self.conv.turns() >= s.max_turns:
                return self.end("ran_out_turns", f"{s.max_turns} turns")
            used = self.conv.usage()
            spent = used.input_tokens + used.output_tokens
            if s.max_trial_tokens is not None and spent >= s.max_trial_tokens:
                return self.end("ran_out_tokens", f"{spent} of {s.max_trial_tokens} tokens")
            if self.t.should_stop():
                return "stopped"
            budget = s.max_tokens if s.max_trial_tokens is None else min(s.max_tokens, s.max_trial_tokens - spent)
            try:
                last = self.t.client.complete(AgentRequest(conversation=self.conv, max_tokens=budget,
                                                           temperature=s.temperature))
            except ModelCallError as err:
                if err.kind == "bad_request" and CONTEXT_FULL.search(str(err)):
                    # The refused call is counted though it stored no turn: trials.calls counts requests.
                    self.t.store.execute("UPDATE trials SET calls=calls+? WHERE id=?",
                                         (err.attempts or 1, self.t.trial.id))
                    return self.end("ran_out_context", str(err).splitlines()[0][:300])
                self.t.store.record_error(self.t.trial.id, str(err), calls=err.attempts or 1)
                return "error"
            self.store(last)
            self.t.on_turn(last)
            if last.tool_calls and self.run_calls(last):
                return self.end("submitted")


def _completion(conv: Conversation, outcome: Outcome, provider: str, model: str) -> Completion:
    steps = [s for s in conv.steps if isinstance(s, AssistantStep)]
    usage = conv.usage()
    return Completion(text=conv.final_text(), model=next((s.model for s in reversed(steps) if s.model), model),
                      provider=provider, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                      cached_tokens=usage.cached_tokens, latency_s=round(sum(s.latency_s for s in steps), 3),
                      stop_reason=outcome, attempts=sum(s.attempts for s in steps))


def fresh_workspace(folder: Path, conv: Conversation, skill_files: dict[str, str] | None) -> Workspace:
    """A new session folder holding the workspace as the stored steps left it."""
    stamp = now().replace(":", "").replace("+0000", "")
    ws = Workspace.create(folder / f"agent-{stamp}-{secrets.token_hex(3)}", skill_files)
    replay_writes(conv, ws)
    return ws


def run_agent_trial(t: AgentTrial) -> TrialEnd | str:
    """Run (or resume) one trial to its end and grade it; "error" or "stopped" otherwise.
    The completion (summed usage, the final message) and the grade are stored here."""
    conv = load_conversation(t.store, t.trial.id, t.prompt.system)
    if not conv.steps:
        t.store.record_prompt(t.trial.id, t.prompt.model_dump(), t.prompt.sha256, t.request_record)
    ws = fresh_workspace(t.folder, conv, t.skill_files)
    checks = WorkspaceChecks(t.case, ws, conv, level=t.settings.level, device=t.settings.device, options=t.options,
                             folder=ws.trial_dir, grade=t.grade)
    run = _Run(t, conv, ws, checks)
    if not conv.steps:
        run.store(UserStep(text=t.prompt.user))
    if conv.end() is None:
        stopped = run.go()
        if stopped is not None:
            return stopped
    end = conv.end()
    assert end is not None
    completion = _completion(conv, end.outcome, t.client.provider, t.client.model)
    if t.trial.status != "answered":
        t.store.record_completion(t.trial.id, completion, count_calls=False)
    grade, _ = t.grade(t.case, ws, conv.final_text(), level=t.settings.level, device=t.settings.device,
                       options=t.options, folder=ws.trial_dir / "final")
    return TrialEnd(outcome=end.outcome, grade=grade, completion=completion)


def regrade(store: Store, trial: TrialRecord, case: Case, *, level: CheckLevel, device: Device, folder: Path,
            options: GradeOptions) -> Grade:
    """`rescore` of an agent trial: the workspace rebuilt from its stored writes, graded with
    today's checks at `level` (no model call, no tool call)."""
    system = (trial.prompt or {}).get("system", "")
    conv = load_conversation(store, trial.id, system)
    ws = fresh_workspace(folder, conv, None)
    grade, _ = grade_workspace(case, ws, conv.final_text(), level=level, device=device, options=options,
                               folder=ws.trial_dir / "final")
    return grade


__all__ = ["AgentClient", "AgentSettings", "AgentTrial", "TrialEnd", "load_conversation", "regrade",
           "run_agent_trial"]
