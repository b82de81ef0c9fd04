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


#: How a kernel answer is written: kernelgrade's kernel-builder project (fenced files), or
#: KernelBench's ModelNew with load_inline (imported KernelBench cases only).
ANSWER_FORMATS = ("kernel-builder", "kernelbench")


def task_text(case: Case, device: str = "cuda", *, agent: bool = False,
              answer_format: str = "kernel-builder") -> str:
    """The case input (with upskill's context.files appended as upskill does), plus (kernel
    cases) the required API and the answer format.

    With `--device cpu` the answer must carry a CPU kernel too, or there is nothing to run;
    the request is the same in both arms. In agent mode the answer format says to write
    the files with write_file rather than fence them in a reply. `answer_format="kernelbench"`
    asks in KernelBench's words for a ModelNew (harness.kernelbench.prompt).
    """
    if case.kernel is None:
        return case.task_input
    if answer_format == "kernelbench":
        from harness.kernelbench.prompt import kernelbench_task_text

        return kernelbench_task_text(case, device)
    from harness.prompts.answer_format import AGENT_ANSWER_FORMAT, ANSWER_FORMAT, required_api_section

    api = required_api_section(case.kernel)
    if device == "cpu" and "run" in case.kernel.checks:
        api += CPU_KERNEL_REQUEST
    return f"{case.task_input}\n\n{api}\n\n{AGENT_ANSWER_FORMAT if agent else ANSWER_FORMAT}"


def build_prompt(case: Case, skill_block: str | None, *, device: str = "cuda",
                 answer_format: str = "kernel-builder") -> Prompt:
    """skill_block is Skill.prompt_block() for the with-skill arm, None for baseline."""
    task = task_text(case, device, answer_format=answer_format)
    user = task if skill_block is None else f"{SKILL_HEADER}{skill_block}{SKILL_FOOTER}{task}"
    return Prompt(system=SYSTEM_PROMPT, user=user)
