"""FIXTURE: scripted agent trajectories for tests/fakes/agent_server.py, and the projects they write.

The scripted agent answers from the request alone (the turns it already holds), so every
trial of a run, in both arms and at any concurrency, follows the same script. Its project
is kernels_reference/rmsnorm (a known-good project with a CPU twin), first with a defect,
then as it is: a fixture, never reported as a model's result.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.agent_server import Call, Reply

REPO = Path(__file__).resolve().parents[2]
RMSNORM = REPO / "kernels_reference" / "rmsnorm"
SKILL = REPO / "tests" / "fixtures" / "skills" / "valid-skill"


def rmsnorm_files() -> dict[str, str]:
    """The known-good project, as the agent writes it (reference.py is the harness's, not the answer's)."""
    return {str(p.relative_to(RMSNORM)): p.read_text() for p in sorted(RMSNORM.rglob("*"))
            if p.is_file() and p.name != "reference.py" and "__pycache__" not in p.parts}


def broken_cu() -> str:
    """rmsnorm.cu with one missing semicolon: nvcc says so at rmsnorm_cuda/rmsnorm.cu:27."""
    text = rmsnorm_files()["rmsnorm_cuda/rmsnorm.cu"]
    assert "constexpr int kVecBytes = 16;" in text
    return text.replace("constexpr int kVecBytes = 16;", "constexpr int kVecBytes = 16", 1)


def broken_build_toml() -> str:
    """build.toml with the capability spelled as nvcc does, not as the builder wants."""
    return rmsnorm_files()["build.toml"].replace('cuda-capabilities = ["9.0"]', 'cuda-capabilities = ["sm_90"]')


def turns_in(body: dict) -> int:
    return sum(m.get("role") == "assistant" for m in body["messages"])


def last_result(body: dict) -> str:
    """The latest tool result the request carries (role=tool, or the user form of llama.cpp)."""
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] in ("tool", "user"))


class FixAgent:
    """read the skill -> write a broken project -> run_checks -> write the fix -> run_checks -> submit.

    `broken` maps path -> defective content; the fix writes the good content of those paths.
    The fix is written only after a check result that names `expect_error` (the test asserts it
    was seen: `seen_errors`)."""

    def __init__(self, broken: dict[str, str], expect_error: str, level: str | None = None) -> None:
        self.broken, self.expect_error, self.level = broken, expect_error, level
        self.seen_errors: list[str] = []
        self.check_results: list[str] = []

    def __call__(self, body: dict) -> Reply:
        good = rmsnorm_files()
        turn = turns_in(body)
        level = {} if self.level is None else {"level": self.level}
        if turn == 0:
            return Reply(text="I will read the skill first.", calls=[Call("read_file", {"path": "skill/SKILL.md"})])
        if turn == 1:
            files = good | self.broken
            return Reply(calls=[Call("write_file", {"path": p, "content": c}) for p, c in files.items()])
        if turn in (2, 4):
            return Reply(calls=[Call("run_checks", level)])
        if turn == 3:
            result = last_result(body)
            self.check_results.append(result)
            if self.expect_error in result:
                self.seen_errors.append(result)
            return Reply(text="Fixing the error.", calls=[Call("write_file", {"path": p, "content": good[p]})
                                                          for p in self.broken])
        if turn == 5:
            self.check_results.append(last_result(body))
            return Reply(calls=[Call("submit", {})])
        return Reply(text="Submitted. The project targets capability 9.0.")


def args_of(body: dict, name: str) -> list[dict]:
    """Arguments of every call of `name` in a request's history."""
    return [json.loads(c["function"]["arguments"]) for m in body["messages"] if m.get("role") == "assistant"
            for c in m.get("tool_calls") or [] if c["function"]["name"] == name]
