"""`kernelgrade cases import-kernelbench`: a KernelBench checkout -> a case file plus one
reference folder per problem. Nothing is dropped silently: every problem selected and not
imported is listed in the case file and in the summary with its reason."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.common.errors import UserError
from harness.kernelbench.analyze import REASONS, Analysis, Refusal, analyze_problem
from harness.kernelbench.scaling import BUDGET_MS, MAX_CPU_BYTES
from harness.kernelbench.writer import make_case, op_name, write_reference

log = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")


def problems_dir(root: Path) -> Path:
    """The folder holding level1/, level2/, ...: KERNELBENCH_DIR itself or its KernelBench/."""
    root = Path(root)
    for cand in (root, root / "KernelBench"):
        if any((cand / f"level{n}").is_dir() for n in range(1, 10)):
            return cand
    raise UserError(f"{root}: no level1/, level2/ ... folders (neither here nor in {root / 'KernelBench'}); "
                    f"point at a KernelBench checkout")


def parse_numbers(text: str | None, *, what: str) -> list[int] | None:
    """'1-40,77' -> [1, ..., 40, 77]; None or '' -> None (all)."""
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"{what} {text!r}: expected numbers and ranges such as 1-40,77, got {part!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UserError(f"{what} {text!r}: range {part} runs backwards")
        out.extend(range(lo, hi + 1))
    return sorted(set(out))


def problem_files(folder: Path, levels: list[int], numbers: list[int] | None) -> list[tuple[int, Path]]:
    """(level, file) for the selected problems, by level then problem number."""
    out: list[tuple[int, Path]] = []
    for level in levels:
        level_dir = folder / f"level{level}"
        if not level_dir.is_dir():
            raise UserError(f"{level_dir}: no such folder (levels present: "
                            f"{', '.join(p.name for p in sorted(folder.glob('level*')) if p.is_dir())})")
        files = [p for p in level_dir.glob("*.py") if p.stem.split("_", 1)[0].isdigit()]
        files.sort(key=lambda p: int(p.stem.split("_", 1)[0]))
        out.extend((level, p) for p in files if numbers is None or int(p.stem.split("_", 1)[0]) in numbers)
    return out


@dataclass
class ImportResult:
    cases_path: Path
    references: Path
    imported: list[Analysis] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Import time per problem (level/name)."""

    def counts(self) -> dict[int, dict[str, int]]:
        """Per level: 'imported' and one count per refusal reason."""
        table: dict[int, Counter] = {}
        for a in self.imported:
            table.setdefault(a.level, Counter())["imported"] += 1
        for r in self.refused:
            table.setdefault(r.level, Counter())[r.reason] += 1
        return {level: dict(c) for level, c in sorted(table.items())}

    def summary_lines(self) -> list[str]:
        lines = []
        for level, c in self.counts().items():
            refused = {k: v for k, v in c.items() if k != "imported"}
            words = ", ".join(f"{v} {REASONS.get(k, k)}" for k, v in sorted(refused.items())) or "none"
            lines.append(f"level {level}: imported {c.get('imported', 0)}, not imported {sum(refused.values())} "
                         f"({words})")
        return lines


def _label(folder: Path, path: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def import_kernelbench(root: Path, out: Path, *, levels: list[int], numbers: list[int] | None = None,
                       dtypes: list[str] | None = None, budget_ms: float = BUDGET_MS,
                       max_cpu_bytes: int = MAX_CPU_BYTES, baseline: str = "eager",
                       progress: Callable[[str], None] | None = None) -> ImportResult:
    """Analyse the selected problems, write references under `out`'s stem folder and the case
    file at `out`. UserError when nothing could be imported (nothing is written then)."""
    dtypes = list(dtypes or ["float32"])
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise UserError(f"--dtypes: {bad[0]!r} is not one of {', '.join(DTYPES)}")
    folder = problems_dir(root)
    files = problem_files(folder, levels, numbers)
    if not files:
        raise UserError(f"{folder}: no problem files for levels {levels} and problems {numbers}")
    out = Path(out)
    refs = out.parent / out.stem
    result = ImportResult(cases_path=out, references=refs)
    cases = []
    for level, path in files:
        if progress:
            progress(f"level {level} {path.stem}")
        t0 = time.perf_counter()
        try:
            found = analyze_problem(path, level, budget_ms=budget_ms, max_cpu_bytes=max_cpu_bytes)
            if isinstance(found, Analysis):
                ref = write_reference(found, refs / op_name(found), source_label=_label(folder.parent, path),
                                      dtypes=dtypes)
                cases.append(make_case(found, reference_rel=ref.relative_to(out.parent).as_posix(),
                                       source_label=_label(folder.parent, path), dtypes=dtypes,
                                       baseline=baseline))
                result.imported.append(found)
            else:
                result.refused.append(found)
        except Exception as err:  # noqa: BLE001 - listed with its error, never dropped, never fatal
            log.warning("%s: import failed", path, exc_info=True)
            number = int(path.stem.split("_", 1)[0])
            result.refused.append(Refusal(path, level, number, "analysis_error",
                                          f"kernelgrade could not import it: {type(err).__name__}: {err}"[:300]))
        result.seconds[f"level{level}/{path.stem}"] = time.perf_counter() - t0
    if not cases:
        raise UserError(f"{folder}: none of the {len(files)} selected problems could be imported: "
                        + "; ".join(result.summary_lines()))
    not_imported = [{"level": r.level, "problem": r.number, "name": r.name, "reason": r.reason,
                     "why": REASONS.get(r.reason, r.reason), "detail": r.detail} for r in result.refused]
    data = {"cases": cases,
            "kernelbench": {"source": str(folder.resolve()), "levels": levels, "problems": numbers,
                            "dtypes": dtypes, "cpu_budget_ms": budget_ms,
                            "cpu_max_bytes": max_cpu_bytes, "references": refs.name,
                            "counts": {str(k): v for k, v in result.counts().items()},
                            "not_imported": not_imported}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return result


__all__ = ["ImportResult", "import_kernelbench", "parse_numbers", "problem_files", "problems_dir"]
