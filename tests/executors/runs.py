"""A stored run of CPU-device answers to grade again: the reference ops' CPU twins, cheat
projects and text-only cases, each answer holding its project as fenced files."""

from __future__ import annotations

import re
from pathlib import Path

from harness.models.base import Completion
from harness.store.db import Store

REFS = Path(__file__).resolve().parents[2] / "kernels_reference"
CHEATS = REFS / "cheats"
#: Ops whose reference project carries a CPU twin kernel.
TWIN_OPS = sorted(p.parent.name for p in REFS.glob("*/build.toml") if 'backend = "cpu"' in p.read_text())
#: CPU cheat projects these tests grade (tracked since issue 13; each fails `run` for its reason).
CHEAT_NAMES = ("returns_input", "mutates_inputs")


def api_of(op: str) -> str:
    found = re.search(r'^API\s*=\s*"(\w+)"', (REFS / op / "reference.py").read_text(), re.M)
    assert found, op
    return found.group(1)


def test_shapes(op: str, count: int = 2) -> list[list[int]]:
    """The first `count` of the reference's TEST_SHAPES (small: CPU runs in CI)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_ref_{op}", REFS / op / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return [list(s) for s in module.TEST_SHAPES[:count]]


def as_answer(project: Path) -> str:
    """A model-style answer holding every file of a project (fenced, path in the info string)."""
    blocks = []
    for path in sorted(p for p in project.rglob("*") if p.is_file() and p.name not in ("EXPECTED.txt", "reference.py")
                       and "__pycache__" not in p.parts):
        blocks.append(f"```text path={path.relative_to(project).as_posix()}\n{path.read_text()}```\n")
    return "Here is the project.\n\n" + "\n".join(blocks)


def twin_case(op: str, *, timed: bool = False) -> dict:
    checks = ["build_toml", "compile", "run"] + (["speedup"] if timed else [])
    return {"id": f"twin-{op}" + ("-timed" if timed else ""), "input": f"Write {op} with a CPU kernel.",
            "kernel": {"op": op, "api": f"{api_of(op)}(x)", "checks": checks, "shapes": test_shapes(op),
                       "dtypes": ["float32"]}}


def cheat_case(name: str) -> dict:
    return {"id": f"cheat-{name}", "input": "Write rms_norm with a CPU kernel.",
            "kernel": {"op": "rmsnorm", "api": "rms_norm(input, weight, eps)", "checks": ["run"], "capabilities": [],
                       "shapes": [[7, 1000], [2, 3, 64]], "dtypes": ["float32"]}}


def text_case(i: int) -> dict:
    return {"id": f"text-{i}", "input": f"Say hello {i}.", "expected": {"contains": ["hello"]}}


def store_run(store: Store, items: list[tuple[dict, str]], *, runs: int = 1) -> str:
    """A finished run whose trials hold these (case, answer) pairs, `runs` times each."""
    cases = [case for case, _ in items]
    run_id = store.create_run(kind="eval", config={"resolved_level": "text", "device": "cpu"}, env={},
                              skill=None, cases=cases)
    store.add_trials(run_id, [(c["id"], "fixture", "baseline", i) for i in range(runs) for c in cases])
    text = {c["id"]: answer for c, answer in items}
    for trial in store.trials(run_id):
        store.record_completion(trial.id, Completion(text=text[trial.case_id], model="fixture", provider="fixture"))
    store.set_run_status(run_id, "finished")
    return run_id


def cpu_batch() -> list[tuple[dict, str]]:
    """Every CPU twin (one of them timed), the cheats, two text-only answers."""
    items = [(twin_case(op), as_answer(REFS / op)) for op in TWIN_OPS]
    items.append((twin_case("rmsnorm", timed=True), as_answer(REFS / "rmsnorm")))
    items += [(cheat_case(name), as_answer(CHEATS / name)) for name in CHEAT_NAMES]
    items += [(text_case(i), f"hello {i}" if i % 2 == 0 else "goodbye") for i in range(2)]
    return items
