"""Prompts for both arms. The system prompt, the task and the answer-format text are
identical in both arms; the with-skill arm only adds the skill block in front of the
task (upskill gives the arms different system prompts, which confounds the lift).
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from harness.inputs.cases import Case
from harness.models.base import ChatRequest

SYSTEM_PROMPT = (
    "You are an expert GPU kernel engineer. Answer the task completely and concretely. "
    "When the task asks for code or files, give them in full."
)

SKILL_HEADER = "Use the following skill when it helps with the task.\n\n<skill>\n"
SKILL_FOOTER = "\n</skill>\n\n"


class Prompt(BaseModel):
    system: str
    user: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.system}\0{self.user}".encode()).hexdigest()

    def request(self, *, max_tokens: int, temperature: float | None) -> ChatRequest:
        return ChatRequest(system=self.system, user=self.user, max_tokens=max_tokens,
                           temperature=temperature)


CPU_KERNEL_REQUEST = (
    "- Also provide a CPU kernel: a `[kernel.<name>_cpu]` table with `backend = \"cpu\"` and C++ "
    "sources against torch, registered for `torch::kCPU` under `#if defined(CPU_KERNEL)` in the "
    "binding (the CUDA one under `#if defined(CUDA_KERNEL)`). It is built and run on the CPU to "
    "check correctness.\n"
)


def task_text(case: Case, device: str = "cuda", *, agent: bool = False) -> str:
    """The case input, plus (kernel cases) the required API and the answer format.

    With `--device cpu` the answer must carry a CPU kernel too, or there is nothing to run;
    the request is the same in both arms. In agent mode the answer format says to write
    the files with write_file rather than fence them in a reply.
    """
    if case.kernel is None:
        return case.input
    from harness.prompts.answer_format import AGENT_ANSWER_FORMAT, ANSWER_FORMAT, required_api_section

    api = required_api_section(case.kernel)
    if device == "cpu" and "run" in case.kernel.checks:
        api += CPU_KERNEL_REQUEST
    return f"{case.input}\n\n{api}\n\n{AGENT_ANSWER_FORMAT if agent else ANSWER_FORMAT}"


def build_prompt(case: Case, skill_block: str | None, *, device: str = "cuda") -> Prompt:
    """skill_block is Skill.prompt_block() for the with-skill arm, None for baseline."""
    task = task_text(case, device)
    user = task if skill_block is None else f"{SKILL_HEADER}{skill_block}{SKILL_FOOTER}{task}"
    return Prompt(system=SYSTEM_PROMPT, user=user)
