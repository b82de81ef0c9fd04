"""`kernelgrade generate`: a teacher writes a skill; held-out cases say whether it helps.

upskill's options work too (-m/--model, --eval-model, -f/--from, -o/--output, -e/--example,
--test-gen-model, --no-eval, --log-runs/--no-log-runs, --runs-dir); where the meaning differs from
upskill's, the option's help says how.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
import typer

from harness.cli.options import (
    CALL_TIMEOUT_HELP, DEVICE_HELP, LEVEL_HELP, SANDBOX_HELP, DeviceChoice, LevelChoice, SandboxChoice, log_runs_option,
    runs_dir_option, upskill_runs_dir, write_run_logs,
)
from harness.common.errors import UserError
from harness.prompts.agent import SkillDelivery


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)


def generate_cmd(
    task: str = typer.Argument(None, help="What the skill should teach, e.g. \"build H100 kernels with kernel-builder\"."),
    teacher: str = typer.Option(None, "--teacher", "--model", "-m", help="The model that writes the skill and the "
                                "cases (-m/--model: upskill's spelling) and refines the skill."),
    example: list[str] = typer.Option(None, "--example", "-e", help="An example of the task, \"input -> output\" "
                                      "(upskill's -e); repeatable. Shown to the teacher when it writes the skill, "
                                      "the cases and the refinements (upskill shows them to its skill writer "
                                      "only); kept with the run, so --resume keeps them."),
    test_gen_model: str = typer.Option(None, "--test-gen-model", help="The model that writes the test cases "
                                       "(upskill's option); the teacher still writes and refines the skill. "
                                       "Resolved like --teacher (with --base-url). Not used with --cases or "
                                       "--no-eval."),
    no_eval: bool = typer.Option(False, "--no-eval", help="Write the skill only (upskill's flag): no cases, no "
                                 "student calls, no refinement; the report says it was not evaluated. Not with "
                                 "--from SKILL_DIR (kernelgrade improves a skill only from measured failures)."),
    student: list[str] = typer.Option(None, "--student", help="Model evaluated without and with the skill; repeat for several."),
    eval_model: list[str] = typer.Option(None, "--eval-model", help="Same as --student. Differs from upskill, "
                                         "where --eval-model adds one extra eval pass after generation: here it is "
                                         "a student measured on train and held-out cases like any other."),
    from_path: Path = typer.Option(None, "--from", "-f", help="An existing skill folder to improve, or a trace: Markdown "
                                   "(.md) or a Claude Code / agent session export (.jsonl)."),
    tool: list[Path] = typer.Option(None, "--tool", help="MCP tool schema JSON the skill should teach; repeatable."),
    cases: Path = typer.Option(None, "--cases", "-c", help="Case file; without it the teacher (or "
                               "--test-gen-model) writes the cases."),
    num_cases: int = typer.Option(20, "--num-cases", help="Cases the teacher (or --test-gen-model) writes "
                                  "(without --cases)."),
    iterations: int = typer.Option(1, "--iterations", "-k", help="Refinements from train failures (0: none)."),
    max_skill_tokens: int = typer.Option(600, "--max-skill-tokens", help="Budget for the SKILL.md body "
                                         "(the local student's tokenizer where it is a student, else chars/4)."),
    name: str = typer.Option(None, "--name", help="Skill name (default: from --from, else from the task)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible server for the teacher."),
    eval_base_url: str = typer.Option(None, "--eval-base-url", help="OpenAI-compatible server for the students."),
    teacher_context: int = typer.Option(None, "--teacher-context", help="Teacher context in tokens (default "
                                        "8192 for local, else 100000); a longer trace is summarised in pieces."),
    teacher_max_tokens: int = typer.Option(4096, "--teacher-max-tokens", help="Output limit per teacher answer."),
    teacher_attempts: int = typer.Option(3, "--teacher-attempts", help="Answers per step before giving up "
                                         "when the teacher's skill or cases are invalid."),
    runs: int = typer.Option(1, "--runs", "-n", help="Student calls per case and arm."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train / held-out split."),
    holdout_fraction: float = typer.Option(0.4, "--holdout-fraction", help="Share of cases held out (0-1)."),
    out_skills: Path = typer.Option(Path("skills"), "--out-skills", help="Where skills/NAME/ is written."),
    output: Path = typer.Option(None, "--output", "-o", help="The skill folder itself (upskill's -o): its parent "
                                "is --out-skills, its name --name."),
    out_cases: Path = typer.Option(Path("cases"), "--out-cases", help="Where cases/NAME.json is written."),
    max_tokens: int = typer.Option(4096, "--max-tokens", help="Output limit per student answer."),
    level: LevelChoice = typer.Option("auto", "--level", help=LEVEL_HELP),
    device: DeviceChoice = typer.Option("cuda", "--device", help=DEVICE_HELP),
    sandbox: SandboxChoice = typer.Option("auto", "--sandbox", help=SANDBOX_HELP),
    timeout: float = typer.Option(300.0, "--timeout", help=CALL_TIMEOUT_HELP),
    agent: bool = typer.Option(False, "--agent", help="Student phases in agent mode (tools, several turns; "
                               "as for eval, see docs/agent.md)."),
    max_turns: int = typer.Option(12, "--max-turns", help="Agent mode: model calls per student trial."),
    max_trial_tokens: int = typer.Option(None, "--max-trial-tokens", help="Agent mode: tokens per student trial."),
    skill_delivery: SkillDelivery = typer.Option(
        None, "--skill-delivery", help="Agent mode: on-demand (default) or inline, as for eval."),
    resume: str = typer.Option(None, "--resume", help="Finish an interrupted generate run."),
    as_json: str = typer.Option(None, "--json", help="The result as JSON on stdout; --json FILE.json writes it "
                                "and still prints the report."),
    log_runs: bool | None = log_runs_option(" Here: one batch per student phase (train-0, ..., holdout), each "
                                            "an eval run of this generate run; none with --no-eval."),
    runs_dir: Path = runs_dir_option(),
) -> None:
    """A teacher writes a skill, refines it on train cases; held-out cases test it.

    The final verdict uses held-out cases only (paired McNemar test, bootstrap interval); when the skill
    does not help a student, the report says so and that it should not be used with that student.
    """
    from harness.cli.render import console, err_console, progress_bar
    from harness.workflows.generate import run_generate, start_generate
    from harness.workflows.generate_options import GenerateHooks, GenerateOptions
    from harness.models.registry import default_model
    from harness.store.db import Store

    store = Store()
    if resume:
        run_id = store.get_run(resume).id
    else:
        if task is None or not task.strip():
            raise UserError("TASK: empty (say what the skill should teach, e.g. \"build H100 kernels with kernel-builder\")")
        students = list(student or []) + list(eval_model or [])
        if output is not None:
            out_skills, name = output.parent, name or output.name
        opts = GenerateOptions(
            task=task, teacher=teacher or default_model(), students=students or [default_model()],
            from_path=from_path, tool_files=tool or [], cases_path=cases, n_cases=num_cases, iterations=iterations,
            max_skill_tokens=max_skill_tokens, name=name, teacher_base_url=base_url, teacher_context=teacher_context,
            teacher_max_tokens=teacher_max_tokens, teacher_attempts=teacher_attempts, eval_base_url=eval_base_url,
            runs=runs, seed=seed, holdout_fraction=holdout_fraction, out_skills=out_skills, out_cases=out_cases,
            max_tokens=max_tokens, level=level, device=device, sandbox=sandbox, timeout_s=timeout, agent=agent,
            max_turns=max_turns, max_trial_tokens=max_trial_tokens, skill_delivery=skill_delivery,
            examples=list(example or []), test_gen_model=test_gen_model, no_eval=no_eval)
        run_id = start_generate(opts, store)
    err_console.print(f"generate run [bold]{run_id}[/bold]  (resume with: kernelgrade generate --resume {run_id})")

    @contextmanager
    def bar(label: str):
        with progress_bar(label, quiet=as_json == "-") as progress:
            yield progress

    hooks = GenerateHooks(on_phase=lambda label: None if as_json == "-" else err_console.print(f"[dim]{label}[/dim]"),
                          eval_progress=bar)
    try:
        result = run_generate(run_id, store, hooks)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: resume with: kernelgrade generate --resume {run_id}")
        raise
    except Exception:
        err_console.print(f"run {run_id} stopped; what was done is stored; resume with: "
                          f"kernelgrade generate --resume {run_id}")
        raise
    logs_dir = upskill_runs_dir(log_runs, runs_dir)
    if logs_dir is not None:
        _write_logs(store, run_id, logs_dir)
    from harness.cli.render import emit

    emit(json.dumps(result.model_dump(mode="json"), indent=2), as_json, what="JSON")
    if as_json != "-":
        _render(result, console)


def _write_logs(store, run_id: str, logs_dir: Path) -> None:
    """upskill's run logs of the eval runs this generate run made (its student phases)."""
    from harness.cli.render import err_console
    from harness.workflows.generate_log import linked_runs

    phases = linked_runs(store, run_id)
    if not phases:
        err_console.print("upskill run logs: none (no student phase ran: --no-eval)", highlight=False)
        return
    write_run_logs(store, list(phases.values()), logs_dir, lambda line: err_console.print(line, highlight=False))


def _render(result, console) -> None:
    from rich.table import Table

    src = result.source
    if src.get("kind") == "trace":
        console.print(f"trace {src['path']} ({src['format']}): {sum(src['events'].values())} events, "
                      f"~{src['estimated_tokens']} tokens after compaction, {src['redactions']} secret(s) redacted")
    elif src.get("kind") == "skill":
        console.print(f"improving {src['path']} (iteration 0 is that skill unchanged)")
    if not result.evaluated:
        _render_unevaluated(result, console)
        return
    split = result.split
    console.print(f"cases: {len(split['train'])} train, {len(split['holdout'])} held out (seed {split['seed']})")
    table = Table(title="Refinement on TRAIN cases (used to pick the skill, not to judge it)")
    table.add_column("iter")
    table.add_column("skill size")
    for model in result.students:
        table.add_column(f"{model} with skill")
    table.add_column("failures")
    for it in result.iterations:
        mark = " *" if it.index == result.chosen_iteration else ""
        table.add_row(f"{it.index}{mark}", f"{it.body_tokens} / {it.block_tokens}",
                      *[_pct(it.train_pass_with.get(m)) for m in result.students], str(it.train_failures))
    console.print(table)
    console.print("train baseline: " + ", ".join(f"{m} {_pct(v)}" for m, v in result.train_baseline.items())
                  + f"; size = SKILL.md body / with references ({result.token_method}); * = kept")
    table = Table(title="HELD-OUT cases: the verdict")
    for col in ("model", "baseline", "with skill", "lift [95% CI]", "McNemar p", "lift / 1k tokens",
                "tokens/trial", "upskill rule", "verdict"):
        table.add_column(col)
    for v in result.verdicts:
        ci = f" [{v.lift_lo:+.2f}, {v.lift_hi:+.2f}]" if v.lift_lo is not None and v.lift_hi is not None else ""
        table.add_row(v.model, _pct(v.pass_baseline), _pct(v.pass_with),
                      (f"{v.lift:+.2f}{ci}" if v.lift is not None else "-"), f"{v.p_value:.3g}",
                      f"{v.lift_per_1k_tokens:+.3f}" if v.lift_per_1k_tokens is not None else "-",
                      f"{_num(v.tokens_baseline)} -> {_num(v.tokens_with)}",
                      "beneficial" if v.upskill_beneficial else "not beneficial",
                      "use" if v.use else f"{v.verdict}: do not use")
    console.print(table)
    console.print(f"skill size: SKILL.md body {result.skill_body_tokens}, with references "
                  f"{result.skill_block_tokens} ({result.token_method})")
    for v in result.verdicts:
        console.print(("[green]" if v.use else "[red]") + v.statement[0].upper() + v.statement[1:], highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    calls = result.teacher_calls
    console.print(f"teacher calls: {calls.get('total', 0)} ({calls.get('invalid', 0)} refused and retried)")
    console.print(f"saved {result.skill_path} and {result.cases_path}; held-out eval run {result.holdout_run_id} "
                  f"(kernelgrade rescore / runs show)")


def _render_unevaluated(result, console) -> None:
    """--no-eval: what was written, and that nothing was measured."""
    console.print(f"evaluation skipped (--no-eval): saved {result.skill_path}, not evaluated", highlight=False)
    console.print(f"skill size: SKILL.md body {result.skill_body_tokens}, with references "
                  f"{result.skill_block_tokens} ({result.token_method})")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    calls = result.teacher_calls
    console.print(f"teacher calls: {calls.get('total', 0)} ({calls.get('invalid', 0)} refused and retried)")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
