"""`generate`'s last step: skills/NAME/ (with skill_meta.json, as upskill writes it) and
cases/NAME.json, each built aside and renamed into place.

cases/NAME.json is kernelgrade's case file: ids, kernel blocks, not_contains, the split. upskill's
case model forbids those keys, so the upskill-loadable copy is skills/NAME/skill_meta.json's
`tests` (upskill's Skill.save() format), which `upskill eval skills/NAME` reads with no --tests;
kernelgrade's ids, the path of the full case file and the cases upskill cannot express (with why)
sit in its metadata.kernelgrade, which upskill ignores (docs/generate.md "What is written").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.inputs.cases import Case
from harness.inputs.skill_meta import write_skill_meta
from harness.workflows import teacher as T
from harness.workflows.evaluate import skill_record
from harness.workflows.generate_context import GenerateContext

log = logging.getLogger(__name__)


def _pass_rate(verdicts: list[Any]) -> float | None:
    """The held-out with-skill pass rate (mean over students), as upskill records test_pass_rate."""
    rates = [v.pass_with for v in verdicts if getattr(v, "pass_with", None) is not None]
    return sum(rates) / len(rates) if rates else None


def write_outputs(ctx: GenerateContext, draft: dict[str, Any], cases: list[Case], split: dict[str, Any],
                  verdicts: list[Any]) -> tuple[str, str]:
    """skills/NAME/ (SKILL.md, files, skill_meta.json) and cases/NAME.json; once per run."""
    data = ctx.steps.get("write")
    if data is not None:
        return data["skill_path"], data["cases_path"]
    skill_out = Path(ctx.config["skill_out"])
    cases_out = Path(ctx.config["cases_out"])
    # Temporary folders / files of a write that was killed midway (ours by their names).
    for stale in [*skill_out.parent.glob(f".{skill_out.name}.tmp-*"), *cases_out.parent.glob(f".{cases_out.name}.*")]:
        log.info("removing %s, left by an interrupted write", stale)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    T.build_skill(draft["files"], skill_out, max_body_tokens=10**9)  # validated again where it lands
    cases_out.parent.mkdir(parents=True, exist_ok=True)
    dumped = [c.model_dump(mode="json", exclude_defaults=True) | {"id": c.id} for c in cases]
    payload = {"cases": dumped,
               "split": {"seed": split["seed"], "holdout_fraction": split["fraction"], "holdout": split["holdout"],
                         "note": "held-out ids were never shown to the teacher; kernelgrade generate run "
                                 + ctx.run_id}}
    fd, tmp = tempfile.mkstemp(prefix=f".{cases_out.name}.", dir=cases_out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, cases_out)
    write_skill_meta(skill_out, cases=dumped, generated_by=ctx.opts.teacher, source_task=ctx.opts.task,
                     test_pass_rate=_pass_rate(verdicts),
                     kernelgrade={"cases_file": os.path.relpath(cases_out.resolve(), skill_out.resolve()),
                                  "generate_run": ctx.run_id, "holdout": split["holdout"]})
    # The generate run row names the skill it produced, as an eval run names the one it used.
    ctx.store.execute("UPDATE runs SET skill=? WHERE id=?", (json.dumps(skill_record(skill_out)), ctx.run_id))
    ctx.steps.put("write", {"skill_path": str(skill_out), "cases_path": str(cases_out)})
    return str(skill_out), str(cases_out)


def write_skill_only(ctx: GenerateContext, draft: dict[str, Any]) -> str:
    """--no-eval: skills/NAME/ with a skill_meta.json holding no tests (as upskill saves a skill it
    did not evaluate); no case file. Once per run."""
    data = ctx.steps.get("write")
    if data is not None:
        return data["skill_path"]
    skill_out = Path(ctx.config["skill_out"])
    for stale in skill_out.parent.glob(f".{skill_out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    T.build_skill(draft["files"], skill_out, max_body_tokens=10**9)
    write_skill_meta(skill_out, cases=[], generated_by=ctx.opts.teacher, source_task=ctx.opts.task,
                     test_pass_rate=None, kernelgrade={"generate_run": ctx.run_id, "evaluated": False})
    ctx.store.execute("UPDATE runs SET skill=? WHERE id=?", (json.dumps(skill_record(skill_out)), ctx.run_id))
    ctx.steps.put("write", {"skill_path": str(skill_out), "cases_path": None})
    return str(skill_out)


__all__ = ["write_outputs", "write_skill_only"]
