"""`generate` end to end with the SCRIPTED TEACHER FIXTURE (tests/fixtures/teacher/) and a
scripted student, both served over the OpenAI protocol (tests/fakes/openai_server.py), and
once against the embedded local model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.common.errors import UserError
from harness.workflows.evaluate import rescore
from harness.workflows.generate import run_generate, start_generate
from harness.workflows.generate_options import GenerateOptions
from harness.workflows.generate_log import teacher_calls
from harness.workflows.generate_sources import split_cases
from harness.inputs.skills import validate_skill
from harness.store.db import Store
from harness.workflows.teacher import TeacherCallFailed, parse_skill_answer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.teacher.scripted import ScriptedTeacher, canned, echo_student, silent_student
from tests.prereq import local_model_installed, missing

REPO = Path(__file__).resolve().parents[2]
TASK = "build H100 kernels with kernel-builder"
NAME = "build-h100-kernels-with-kernel-builder"
CASES = json.loads(canned("cases.json"))["cases"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # skills/ and cases/ land here


def _opts(teacher_url: str, student_url: str, **kw) -> GenerateOptions:
    base = dict(task=TASK, teacher="fake-teacher", students=["fake-student"], teacher_base_url=teacher_url,
                eval_base_url=student_url, runs=2, level="text", attempts=1, holdout_fraction=0.3)
    return GenerateOptions(**(base | kw))


def _run(teacher: ScriptedTeacher, student=echo_student, **kw):
    store = Store()
    with FakeOpenAIServer(teacher) as ts, FakeOpenAIServer(student) as ss:
        run_id = start_generate(_opts(ts.base_url, ss.base_url, **kw), store)
        return store, run_id, run_generate(run_id, store)


def _no_partial(tmp: Path) -> None:
    for folder in (tmp / "skills", tmp / "cases"):
        if folder.exists():
            assert not [p for p in folder.iterdir() if p.name.startswith(".")], list(folder.iterdir())


def test_loop_writes_skill_and_cases_refines_on_train_and_judges_on_held_out(tmp_path: Path) -> None:
    teacher = ScriptedTeacher()
    store, run_id, result = _run(teacher)

    # Saved beside each other, spec-valid, nothing half-written.
    skill_dir = tmp_path / "skills" / NAME
    assert not [f for f in validate_skill(skill_dir) if f.severity == "error"]
    assert (skill_dir / "references" / "layout.md").is_file()  # v2 (the refinement) was kept
    saved = json.loads((tmp_path / "cases" / f"{NAME}.json").read_text())
    assert len(saved["cases"]) == 10 and saved["split"]["holdout"] == result.split["holdout"]
    _no_partial(tmp_path)
    # skill_meta.json as upskill's Skill.save() writes it: metadata, and the cases upskill can load as tests
    # (kernelgrade's ids and the full case file under metadata.kernelgrade, which upskill ignores).
    meta = json.loads((skill_dir / "skill_meta.json").read_text())
    assert list(meta) == ["metadata", "tests"] and meta["metadata"]["version"] == "1.0"
    assert meta["metadata"]["generated_by"] == "fake-teacher" and meta["metadata"]["source_task"] == TASK
    assert meta["metadata"]["test_pass_rate"] == 1.0  # held-out, with the skill
    block = meta["metadata"]["kernelgrade"]
    assert (skill_dir / block["cases_file"]).resolve() == (tmp_path / "cases" / f"{NAME}.json").resolve()
    assert len(meta["tests"]) + len(block["not_in_tests"]) == 10 and len(block["case_ids"]) == len(meta["tests"])
    assert all(set(t) == {"input", "context", "expected", "output_file", "validator", "validator_config"}
               for t in meta["tests"])

    # Seeded split, 30% held out; the held-out inputs never reach the teacher.
    assert len(result.split["holdout"]) == 3 and len(result.split["train"]) == 7
    held = [c["input"] for c in CASES if c["id"] in result.split["holdout"]]
    assert [k for k, _ in teacher.prompts] == ["cases", "skill", "refine"]
    for kind, prompt in teacher.prompts[1:]:
        assert not any(h in prompt for h in held), kind
    # Refinement saw the with-skill failures on train (the guard cases v1 lacks), only those.
    refine = teacher.prompts[2][1]
    failing_train = [c for c in CASES if c["id"] in result.split["train"] and c["id"].startswith("guard")]
    assert failing_train and all(c["input"] in refine for c in failing_train)

    it0, it1 = result.iterations
    assert it0.train_failures == len(failing_train) and it1.train_failures == 0
    assert result.chosen_iteration == 1 and result.train_baseline == {"fake-student": 0.0}
    assert it1.train_pass_with == {"fake-student": 1.0}

    # The verdict is on held-out trials only: 3 cases x 2 runs = 6 pairs, all discordant.
    (verdict,) = result.verdicts
    assert (verdict.pairs, verdict.b, verdict.c) == (6, 0, 6)
    assert verdict.verdict == "helps" and verdict.use and verdict.lift == 1.0
    assert verdict.lift_per_1k_tokens == pytest.approx(1000 / result.skill_block_tokens)
    holdout = store.trials(result.holdout_run_id)
    assert {t.case_id for t in holdout} == set(result.split["holdout"])
    assert len(holdout) == 3 * 2 * 2  # cases x arms x runs

    # Stored like an eval run: child runs are eval runs linked to the generate run; teacher calls stored.
    run = store.get_run(run_id)
    assert run.kind == "generate" and run.status == "finished"
    child = store.get_run(result.holdout_run_id)
    assert child.kind == "eval" and child.config["generate_run"] == run_id and child.config["phase"] == "holdout"
    train1 = store.trials(result.iterations[1].train_run_id)
    assert {t.arm for t in train1} == {"with_skill"}  # the baseline is not re-run per iteration
    calls = teacher_calls(store, run_id)
    assert [c["step"] for c in calls] == ["cases", "draft-0", "draft-1"]
    assert all(c["status"] == "ok" and c["completion"]["text"] and c["request"]["user"] for c in calls)
    assert result.teacher_calls == {"ok": 3, "total": 3}
    # Re-scorable like any eval run.
    assert rescore(result.holdout_run_id, store, level="text", device="cuda") == 12


def test_a_skill_that_does_not_help_is_called_so(tmp_path: Path) -> None:
    _, _, result = _run(ScriptedTeacher(), student=silent_student, iterations=0)
    (verdict,) = result.verdicts
    assert not verdict.use and verdict.verdict != "helps" and verdict.lift == 0.0
    assert "Do not use it with fake-student" in verdict.statement
    assert any("does not support using it" in n for n in result.notes)


def test_invalid_skill_is_refused_and_retried_with_the_reason(tmp_path: Path) -> None:
    script = {"cases": [canned("cases.json")], "skill": [canned("skill_invalid.md"), canned("skill_v1.md")],
              "refine": [canned("skill_v2.md")]}
    teacher = ScriptedTeacher(script)
    store, run_id, result = _run(teacher, iterations=0)
    calls = teacher_calls(store, run_id)
    assert [(c["step"], c["status"]) for c in calls] == [("cases", "ok"), ("draft-0", "invalid"), ("draft-0", "ok")]
    problem = calls[1]["problem"]
    assert "version" in problem and "references/missing.md" in problem
    assert "could not be used" in teacher.prompts[2][1] and problem in teacher.prompts[2][1]
    assert result.teacher_calls["invalid"] == 1


def test_teacher_that_never_gives_a_valid_skill_stops_within_the_bound(tmp_path: Path) -> None:
    script = {"cases": [canned("cases.json")], "skill": [canned("skill_invalid.md")], "refine": [""]}
    store = Store()
    with FakeOpenAIServer(ScriptedTeacher(script)) as ts, FakeOpenAIServer(echo_student) as ss:
        run_id = start_generate(_opts(ts.base_url, ss.base_url, teacher_attempts=2), store)
        with pytest.raises(UserError, match="no usable answer for draft-0 in 2 attempts"):
            run_generate(run_id, store)
    assert [c["status"] for c in teacher_calls(store, run_id)] == ["ok", "invalid", "invalid"]
    assert store.get_run(run_id).status == "interrupted"
    assert not (tmp_path / "skills").exists() and not (tmp_path / "cases").exists()


def test_skill_over_the_token_budget_is_sent_back(tmp_path: Path) -> None:
    script = {"cases": [canned("cases.json")], "skill": [canned("skill_long.md"), canned("skill_v1.md")],
              "refine": [canned("skill_v2.md")]}
    store, run_id, result = _run(ScriptedTeacher(script), iterations=0, max_skill_tokens=600)
    problem = teacher_calls(store, run_id)[1]["problem"]
    assert "over the budget of 600" in problem and "references/" in problem
    assert result.skill_body_tokens <= 600


def test_failed_teacher_call_stops_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    teacher = ScriptedTeacher()
    store = Store()
    # The first request fails with 400 (not retried): the cases call fails, the run stops.
    with FakeOpenAIServer(teacher, fail_first=1, fail_status=400) as ts, FakeOpenAIServer(echo_student) as ss:
        run_id = start_generate(_opts(ts.base_url, ss.base_url, iterations=0), store)
        with pytest.raises(TeacherCallFailed, match="cases"):
            run_generate(run_id, store)
        assert store.get_run(run_id).status == "interrupted"
        (failed,) = teacher_calls(store, run_id)
        assert failed["status"] == "error" and failed["problem"].endswith("(after 1 attempt)")  # attempts=1
        assert not (tmp_path / "skills").exists()
        result = run_generate(run_id, store)  # resume: same run id
        assert len(ts.requests) == 3  # the failed call, then cases and draft-0; nothing twice
        student_calls = len(ss.requests)
        assert student_calls == 7 * 2 * 2 + 3 * 2 * 2  # train both arms + held-out both arms, 2 runs
        again = run_generate(run_id, store)  # a finished run replays from storage, no calls
        assert len(ts.requests) == 3 and len(ss.requests) == student_calls
    assert result.verdicts[0].verdict == again.verdicts[0].verdict
    assert (tmp_path / "skills" / NAME / "SKILL.md").is_file()


def test_student_errors_stop_the_run_resumable(tmp_path: Path) -> None:
    store = Store()
    with FakeOpenAIServer(ScriptedTeacher()) as ts, FakeOpenAIServer(echo_student, fail_first=1, fail_status=400) as ss:
        run_id = start_generate(_opts(ts.base_url, ss.base_url, iterations=0), store)
        from harness.workflows.generate_options import StudentCallsFailed

        with pytest.raises(StudentCallsFailed, match="train-0"):
            run_generate(run_id, store)
        assert not (tmp_path / "skills").exists()
        result = run_generate(run_id, store)
    assert result.status == "finished" and len(result.iterations) == 1


def test_given_cases_are_used_and_the_split_is_seeded(tmp_path: Path) -> None:
    cases = tmp_path / "mine.json"
    cases.write_text(canned("cases.json"))
    teacher = ScriptedTeacher()
    _, _, result = _run(teacher, cases_path=cases, iterations=0, seed=7)
    assert "cases" not in [k for k, _ in teacher.prompts]
    ids = [c["id"] for c in CASES]
    assert (result.split["train"], result.split["holdout"]) == split_cases(ids, fraction=0.3, seed=7)
    assert split_cases(ids, fraction=0.3, seed=7) == split_cases(list(reversed(ids)), fraction=0.3, seed=7)
    assert split_cases(ids, fraction=0.3, seed=7) != split_cases(ids, fraction=0.3, seed=8)
    assert split_cases(["a", "b"], fraction=0.9, seed=0)[0]  # at least one train case


def test_from_existing_skill_starts_from_it_unchanged(tmp_path: Path) -> None:
    source = REPO / "tests/fixtures/skills/valid-skill"
    teacher = ScriptedTeacher()
    _, _, result = _run(teacher, from_path=source, iterations=1)
    assert [k for k, _ in teacher.prompts] == ["cases", "refine"]  # no first draft: the skill is iteration 0
    assert "# Valid skill" in teacher.prompts[1][1]
    assert result.name == "valid-skill" and result.source["kind"] == "skill"
    assert result.iterations[0].notes[0] == "the --from skill, unchanged"
    assert (tmp_path / "skills" / "valid-skill" / "SKILL.md").is_file()


def test_from_trace_gives_the_teacher_the_compacted_redacted_record(tmp_path: Path) -> None:
    teacher = ScriptedTeacher()
    _, _, result = _run(teacher, from_path=REPO / "tests/fixtures/traces/h100-rmsnorm.jsonl", iterations=0)
    skill_prompt = dict(teacher.prompts)["skill"]
    assert "<trace>" in skill_prompt and "<torch/all.h>" in skill_prompt and "ERROR Bash" in skill_prompt
    assert "sk-ant-api03-FAKE" not in skill_prompt and "[REDACTED]" in skill_prompt
    assert result.source["kind"] == "trace" and result.source["redactions"] == 1


def test_trace_too_large_for_any_summary_is_refused_with_the_limit(tmp_path: Path) -> None:
    store = Store()
    opts = _opts("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", teacher_context=1900, teacher_max_tokens=512,
                 from_path=REPO / "tests/fixtures/traces/h100-rmsnorm.md")
    with pytest.raises(UserError, match=r"budget for a trace is 188 tokens \(context 1900 .*--teacher-context"):
        start_generate(opts, store)
    assert store.list_runs() == [] and not (tmp_path / "skills").exists()


def test_trace_over_the_teacher_context_is_summarised_in_pieces(tmp_path: Path) -> None:
    from tests.fixtures.teacher.scripted import SUMMARY

    teacher = ScriptedTeacher()
    store, run_id, result = _run(teacher, iterations=0, teacher_context=2000, teacher_max_tokens=512,
                                 from_path=REPO / "tests/fixtures/traces/h100-rmsnorm.md")
    kinds = [k for k, _ in teacher.prompts]
    n = kinds.count("summary")
    assert n >= 2 and kinds[:n] == ["summary"] * n  # every piece summarised before anything else
    pieces = [p for k, p in teacher.prompts if k == "summary"]
    assert "[1] NOTE" in pieces[0] and "FINAL ANSWER" in pieces[-1]  # in order, nothing dropped
    assert all(len(p.split("<trace-part>\n")[1].split("</trace-part>")[0]) <= 288 * 4 for p in pieces)
    skill_prompt = dict(teacher.prompts)["skill"]
    assert f"[part {n} of {n}, summarised]" in skill_prompt and SUMMARY in skill_prompt
    assert "TOOL CALL write_file" not in skill_prompt  # the raw trace did not go in
    assert [c["step"] for c in teacher_calls(store, run_id)][:n] == [f"trace-{i}" for i in range(1, n + 1)]
    assert result.source["summarised_in"] == n


def test_tool_schemas_reach_the_teacher_and_bad_ones_are_refused(tmp_path: Path) -> None:
    tool = tmp_path / "tool.json"
    tool.write_text(json.dumps({"tools": [{"name": "kernel_build", "description": "Build a kernel project",
                                           "inputSchema": {"type": "object"}}]}))
    teacher = ScriptedTeacher()
    _run(teacher, tool_files=[tool], iterations=0)
    assert "kernel_build" in dict(teacher.prompts)["skill"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"description": "no name"}]))
    with pytest.raises(UserError, match="tool 0: name: missing"):
        start_generate(_opts("http://x/v1", "http://x/v1", tool_files=[bad]), Store())


@pytest.mark.parametrize("change, message", [
    ({"task": "   "}, "TASK: empty"),
    ({"holdout_fraction": 1.0}, "--holdout-fraction"),
    ({"iterations": -1}, "--iterations"),
    ({"max_skill_tokens": 10}, "--max-skill-tokens"),
    ({"from_path": Path("nowhere.md")}, "no such trace file"),
    ({"from_path": Path("trace.docx")}, "unknown export format"),
])
def test_bad_input_is_one_line_before_any_call(change: dict, message: str) -> None:
    store = Store()
    with pytest.raises(UserError) as err:
        start_generate(_opts("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", **change), store)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert store.list_runs() == []


def test_existing_output_skill_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "skills" / NAME).mkdir(parents=True)
    with pytest.raises(UserError, match="already exists"):
        start_generate(_opts("http://x/v1", "http://x/v1"), Store())


def test_answer_without_file_blocks_becomes_the_body() -> None:
    files, notes = parse_skill_answer("Use cuda-capabilities = [\"9.0\"].", name="n-1", description="Use when x.")
    assert files["SKILL.md"].startswith("---\nname: n-1\ndescription: Use when x.\n---\n")
    assert notes == ["no <file> blocks: the whole answer was taken as SKILL.md",
                     "no frontmatter: written by the harness from the name and the task"]
    from harness.workflows.teacher import TeacherAnswerError

    for bad in ('<file path="../x">a</file><file path="SKILL.md">b</file>', '<file path="notes.txt">a</file>', " "):
        with pytest.raises(TeacherAnswerError):
            parse_skill_answer(bad, name="n-1", description="d")


def test_cli_json_and_eval_model_alias(tmp_path: Path) -> None:
    with FakeOpenAIServer(ScriptedTeacher()) as ts, FakeOpenAIServer(echo_student) as ss:
        out = subprocess.run(
            [sys.executable, "-m", "harness.cli.main", "generate", TASK, "--teacher", "fake-teacher", "--base-url",
             ts.base_url, "--eval-model", "fake-student", "--eval-base-url", ss.base_url, "--runs", "2",
             "--holdout-fraction", "0.3",
             "--level", "text", "--iterations", "1", "--json"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
            env=os.environ | {"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["students"] == ["fake-student"] and result["verdicts"][0]["verdict"] == "helps"
    assert (tmp_path / "skills" / NAME / "SKILL.md").is_file()


def test_cli_empty_task_is_exit_2_one_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "harness.cli.main", "generate", "", "--teacher", "x"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env=os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "300"})  # rich wraps at 80
    assert out.returncode == 2 and "TASK: empty" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_loop_against_the_embedded_local_model(tmp_path: Path) -> None:
    """Teacher and student are the embedded SmolLM2-135M: asserts on what was written and
    stored, not on quality. Given cases keep the teacher to one draft and one refinement."""
    if not local_model_installed():
        missing("the embedded model is not installed", "run scripts/setup.sh")
    cases = tmp_path / "c.json"
    cases.write_text(json.dumps({"cases": [
        {"id": "cap", "input": "H100 cuda-capabilities value?", "expected": {"contains": "9.0"}},
        {"id": "arch", "input": "sm_ number of H100?", "expected": {"contains": "90"}},
        {"id": "guard", "input": "Hopper arch guard macro?", "expected": {"contains": "__CUDA_ARCH__"}},
    ]}))
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli.main", "generate", "H100 build settings", "--teacher", "local",
         "--student", "local", "--cases", str(cases), "--iterations", "1", "--teacher-max-tokens", "48",
         "--max-tokens", "16", "--max-skill-tokens", "200", "--level", "text", "--teacher-attempts", "2",
         "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env=os.environ | {"PYTHONPATH": str(REPO)})
    store = Store()
    (gen,) = [r for r in store.list_runs() if r["kind"] == "generate"]
    calls = teacher_calls(store, gen["id"])
    assert calls and all(c["request"]["user"] for c in calls)
    assert all(c["completion"]["provider"] == "local" for c in calls if c["completion"])
    if out.returncode != 0:
        # A 135M teacher may fail to give a usable skill within the bound: that must be the
        # one clear line, with every refused answer stored and nothing written to skills/.
        assert out.returncode == 2 and "no usable answer" in out.stderr, out.stderr[-2000:]
        assert all(c["status"] == "invalid" and c["problem"] for c in calls[-2:])
        assert not (tmp_path / "skills").exists()
        return
    result = json.loads(out.stdout)
    skill_dir = Path(result["skill_path"])
    assert not [f for f in validate_skill(skill_dir) if f.severity == "error"]
    assert json.loads(Path(result["cases_path"]).read_text())["split"]["holdout"] == result["split"]["holdout"]
    assert result["token_method"] == "tokens, local student's tokenizer"
    assert 1 <= len(result["iterations"]) <= 2 and len(result["verdicts"]) == 1
    holdout = store.trials(result["holdout_run_id"])
    assert holdout and all(t.status == "answered" and t.grade for t in holdout)
    assert {t.case_id for t in holdout} == set(result["split"]["holdout"])
    assert {t.arm for t in holdout} == {"baseline", "with_skill"}


def test_teacher_kernel_cases_are_graded_by_checks_and_unknown_ops_refused(tmp_path: Path) -> None:
    good = {"cases": [c for c in CASES[:6]] + [
        {"id": "rms-project", "input": "Write an RMSNorm kernel-builder project for H100",
         "expected": {"contains": "9.0"},
         "kernel": {"op": "rmsnorm", "api": "rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor",
                    "checks": ["build_toml"]}}]}
    bad = json.loads(json.dumps(good))
    bad["cases"][-1]["kernel"]["op"] = "flash_attention_9000"
    teacher = ScriptedTeacher({"cases": [json.dumps(bad), json.dumps(good)], "skill": [canned("skill_v1.md")],
                               "refine": [canned("skill_v2.md")]})
    store, run_id, result = _run(teacher, iterations=0, holdout_fraction=0.5, seed=1)
    first_prompt = teacher.prompts[0][1]
    assert "rmsnorm -> rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor" in first_prompt
    calls = teacher_calls(store, run_id)
    assert calls[0]["status"] == "invalid" and "flash_attention_9000" in calls[0]["problem"]
    saved = json.loads((tmp_path / "cases" / f"{NAME}.json").read_text())
    assert next(c for c in saved["cases"] if c["id"] == "rms-project")["kernel"]["op"] == "rmsnorm"
    phase = "holdout" if "rms-project" in result.split["holdout"] else "train"
    run = result.holdout_run_id if phase == "holdout" else result.iterations[0].train_run_id
    graded = [t for t in store.trials(run) if t.case_id == "rms-project"]
    assert graded and all([r.name for r in t.grade.results] == ["markers", "build_toml", "scan"]
                          for t in graded)
    # The echo student writes no project files, so the build_toml check fails it in both arms.
    assert all(t.grade.score.verdict == "fail" for t in graded)


def test_improving_a_skill_in_place_replaces_it_whole(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "skills" / "valid-skill"
    shutil.copytree(REPO / "tests/fixtures/skills/valid-skill", target)
    stale = tmp_path / "skills" / ".valid-skill.tmp-killed"  # left by a write that was killed
    (stale / "valid-skill").mkdir(parents=True)
    _, _, result = _run(ScriptedTeacher(), from_path=Path("skills/valid-skill"), iterations=1)
    assert result.chosen_iteration == 1 and Path(result.skill_path) == target
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == \
        ["SKILL.md", "references/layout.md", "skill_meta.json"]  # the old references/ and scripts/ went
    assert "name: valid-skill" in (target / "SKILL.md").read_text()
    _no_partial(tmp_path)


def test_from_skill_with_another_name(tmp_path: Path) -> None:
    _, _, result = _run(ScriptedTeacher(), from_path=REPO / "tests/fixtures/skills/valid-skill", iterations=0,
                        name="h100-rules")
    assert result.name == "h100-rules" and (tmp_path / "skills" / "h100-rules" / "SKILL.md").is_file()
    assert any("replaced by 'h100-rules'" in n for n in result.iterations[0].notes)


def test_terminal_report_states_the_held_out_verdict(tmp_path: Path) -> None:
    with FakeOpenAIServer(ScriptedTeacher()) as ts, FakeOpenAIServer(silent_student) as ss:
        out = subprocess.run(
            [sys.executable, "-m", "harness.cli.main", "generate", TASK, "--teacher", "fake-teacher", "--base-url",
             ts.base_url, "--student", "fake-student", "--eval-base-url", ss.base_url, "--level", "text",
             "--iterations", "0"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
            env=os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "250"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = " ".join(out.stdout.split())
    assert "HELD-OUT cases: the verdict" in text and "upskill rule" in text
    assert "Do not use it with fake-student" in text and "not enough runs: do not use" in text
    assert "only 4 held-out pair(s) per student" in text  # 10 cases x 0.4 held out, 1 run
    store = Store()
    (gen,) = [r for r in store.list_runs() if r["kind"] == "generate"]
    assert store.get_run(gen["id"]).skill["name"] == NAME  # the run row names the skill it wrote
