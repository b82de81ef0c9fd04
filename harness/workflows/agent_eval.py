"""The agent-mode side of the eval workflow (issue 17): what `start_eval` checks and records
for an agent run, and how `execute` and `rescore` run one agent trial.

harness/workflows/evaluate.py branches here on the run's mode; the trajectory itself is
harness/agent/loop.py.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Callable

from harness.common.errors import UserError
from harness.inputs.cases import Case
from harness.models.registry import ModelSpec

if TYPE_CHECKING:
    from harness.agent.conversation import AssistantStep
    from harness.common.config import Config
    from harness.store.db import Store, TrialRecord

MODES = ("one-shot", "agent")


def run_mode(config: dict) -> str:
    """A stored run's mode; runs stored before agent mode existed are one-shot."""
    return config.get("mode") or "one-shot"


def check_answer_format(opts, cases: list[Case]) -> None:
    """--answer-format: kernel-builder, or kernelbench for one-shot runs of imported KernelBench cases."""
    from harness.prompts.build import ANSWER_FORMATS

    fmt = getattr(opts, "answer_format", "kernel-builder")
    if fmt not in ANSWER_FORMATS:
        raise UserError(f"--answer-format {fmt!r}: one of {', '.join(ANSWER_FORMATS)}")
    if fmt != "kernelbench":
        return
    if opts.agent:
        raise UserError("--answer-format kernelbench: one-shot only (a ModelNew answer is one reply); "
                        "agent mode writes kernel-builder projects in its workspace")
    from harness.kernelbench.prompt import program_of

    for case in cases:
        if case.kernel is None:
            raise UserError(f"case {case.id!r}: --answer-format kernelbench needs kernel cases "
                            "(made by kernelgrade cases import-kernelbench)")
        try:
            program_of(case)
        except ValueError as err:
            raise UserError(f"--answer-format kernelbench: {err}") from None


def check_agent_options(opts, cases: list[Case]) -> None:
    """Refuse options that do not fit the mode, before anything is stored or called."""
    check_answer_format(opts, cases)
    if not opts.agent:
        if opts.skill_delivery not in (None, "inline"):
            raise UserError(f"--skill-delivery {opts.skill_delivery}: only with --agent (one-shot always "
                            "puts the skill inline)")
        named = next((c for c in cases if c.output_file), None)
        if named is not None:
            raise UserError(f"{opts.cases_path}: case {named.id!r}: output_file ({named.output_file}) is graded from "
                            "the agent's workspace, and a one-shot answer has none; run with --agent or drop the field")
        return
    if opts.max_turns < 1:
        raise UserError("--max-turns must be at least 1")
    if opts.max_trial_tokens is not None and opts.max_trial_tokens < 1:
        raise UserError("--max-trial-tokens must be at least 1")


def check_tool_support(specs: list[ModelSpec], *, timeout_s: float) -> None:
    """Every model of an agent run must take tools: one line naming the first that does not,
    before any trial is stored or called. OpenAI-compatible servers are asked once (a
    one-token request with the tools); the embedded server is started with a tool format."""
    import os

    from harness.agent.providers import known_tool_problem, probe_tools

    for spec in specs:
        problem = known_tool_problem(spec)
        if problem is None and spec.provider == "openai-compat":
            key = os.environ.get(spec.key_env) if spec.key_env else None
            problem = probe_tools(spec, base_url=spec.base_url, api_key=key, timeout_s=min(timeout_s, 60.0))
        if problem is not None:
            raise UserError(problem)


def agent_skill_fields(skill_dir, delivery: str) -> dict:
    """What an agent run adds to its skill record: the files of skill/ (on-demand), stored
    with the run so a resumed or imported run rebuilds the same folder without the original."""
    if delivery != "on-demand":
        return {}
    from harness.agent.workspace import skill_files_from_folder

    files, skipped = skill_files_from_folder(skill_dir)
    return {"files": files, "files_skipped": skipped}


def agent_config(opts) -> dict:
    """The mode fields of the stored run config."""
    return {"mode": "agent", "skill_delivery": opts.skill_delivery or "on-demand"}


def mode_fields(opts, skill_dir) -> tuple[dict, dict]:
    """(config fields, skill-record fields) for an eval run made with `opts`: its mode, and in
    agent mode the skill delivery and the files of skill/. Used by start_eval and by
    generate's student phases alike."""
    if not opts.agent:
        return {"mode": "one-shot"}, {}
    config = agent_config(opts)
    return config, agent_skill_fields(skill_dir, config["skill_delivery"])


def do_agent_trial(store: Store, trial: TrialRecord, case: Case, client, skill: dict, opts, level: str,
                   config: Config, *, on_cost: Callable[[float], None], should_stop: Callable[[], bool]) -> str:
    """Run or resume one agent trial; its verdict, or "error" / "stopped" (left resumable)."""
    from harness.agent.loop import AgentSettings, AgentTrial, run_agent_trial
    from harness.agent.tools import SPECS
    from harness.checks import GradeOptions
    from harness.common.paths import artifacts_dir
    from harness.prompts.agent import build_agent_prompt, skill_folder_in
    from harness.store.provenance import kernelgrade_version

    delivery = opts.skill_delivery or "on-demand"
    with_skill = trial.arm == "with_skill"
    prompt = build_agent_prompt(case, skill if with_skill else None, delivery=delivery, device=opts.device)
    files = skill.get("files", {}) if with_skill and skill_folder_in(delivery) else None
    temperature = opts.temperature if getattr(client, "takes_temperature", True) else None
    settings = AgentSettings(max_turns=case.max_turns or opts.max_turns, max_trial_tokens=opts.max_trial_tokens,
                             max_tokens=opts.max_tokens, temperature=temperature, level=level, device=opts.device)

    def on_turn(step: AssistantStep) -> None:
        u = step.usage
        on_cost(config.cost_usd(step.model, u.input_tokens, u.output_tokens, u.cached_tokens) or 0.0)

    request = {"mode": "agent", "max_tokens": opts.max_tokens, "temperature": temperature,
               "max_turns": settings.max_turns, "max_trial_tokens": opts.max_trial_tokens,
               "skill_delivery": delivery, "skill_folder": files is not None, "tools": list(SPECS)}
    folder = artifacts_dir(trial.run_id, create=False) / f"trial-{trial.id}"
    result = run_agent_trial(AgentTrial(
        store=store, trial=trial, case=case, client=client, prompt=prompt, skill_files=files, settings=settings,
        folder=folder, options=GradeOptions(sandbox=opts.sandbox), on_turn=on_turn, should_stop=should_stop,
        request_record=request))
    if isinstance(result, str):
        return result
    store.record_grade(trial.id, result.grade, version=kernelgrade_version())
    return result.grade.score.verdict


def rescore_agent_trial(store: Store, trial: TrialRecord, case: Case, *, level: str, device: str, sandbox: str) -> str:
    """Re-grade an answered agent trial: its workspace rebuilt from the stored writes."""
    from harness.agent.loop import regrade
    from harness.checks import GradeOptions
    from harness.common.paths import artifacts_dir
    from harness.store.provenance import kernelgrade_version

    folder = artifacts_dir(trial.run_id, create=False) / f"trial-{trial.id}" / f"rescore-{secrets.token_hex(3)}"
    grade = regrade(store, trial, case, level=level, device=device, folder=folder,  # type: ignore[arg-type]
                    options=GradeOptions(sandbox=sandbox))
    store.record_grade(trial.id, grade, version=kernelgrade_version())
    return grade.score.verdict


__all__ = ["MODES", "agent_config", "mode_fields", "agent_skill_fields", "check_agent_options", "check_tool_support",
           "do_agent_trial", "rescore_agent_trial", "run_mode"]
