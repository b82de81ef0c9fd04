"""The fixture KernelBench checkout imported once per test session (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kernelbench.importer import ImportResult, import_kernelbench

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kernelbench"
CHECKOUT = FIXTURES  # holds KernelBench/level1, KernelBench/level2, as a KernelBench checkout does
ANSWERS = FIXTURES / "answers"
#: Small CPU shapes for tests (DESIGN.md CI budget: <= 1M elements): 4 MiB per call at most.
TEST_MAX_BYTES = 4 * 2 ** 20


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory) -> ImportResult:
    out = tmp_path_factory.mktemp("kb") / "kernelbench.json"
    return import_kernelbench(CHECKOUT, out, levels=[1, 2], max_cpu_bytes=TEST_MAX_BYTES)


def reference_of(result: ImportResult, case) -> Path:
    return result.cases_path.parent / case.model_extra["kernelbench"]["reference"]
