"""The `sass` check: read the compiled SASS of every CUDA object.

Fails on: a kernel whose body compiled to nothing (the classic `#if __CUDA_ARCH__`
guard the target does not meet), an object without SASS for a requested H100
architecture (a wrong-architecture binary), no kernel at all in the CUDA sources,
a marker the case requires that no kernel has, or a marker it forbids that one has.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from harness.build.nvcc import H100_ARCHES
from harness.checks.base import CheckContext
from harness.common.results import CheckResult, Finding

log = logging.getLogger(__name__)

NAME = "sass"


def _demangler(names: list[str]) -> dict[str, str]:
    tool = shutil.which("c++filt")
    if not tool or not names:
        return {}
    try:
        out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True,
                             timeout=30).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(zip(names, (o.strip() for o in out))) if len(out) == len(names) else {}


def check_sass(ctx: CheckContext) -> CheckResult:
    from harness.build.disassemble import disassemble
    from harness.build.toolchain import find_cuobjdump, tool_version

    objects = ctx.state.get("cuda_objects")
    if not objects:
        return CheckResult.skip(NAME, "no CUDA objects were compiled")
    tool = find_cuobjdump()
    if tool is None:
        return CheckResult.skip(NAME, "cuobjdump not found (pip install nvidia-cuda-cuobjdump)")
    version = tool_version(tool.path)
    spec = ctx.case.kernel.sass if ctx.case is not None and ctx.case.kernel else None
    findings: list[Finding] = []
    out_dir = ctx.artifacts / "sass"
    out_dir.mkdir(parents=True, exist_ok=True)
    all_kernels = []
    hits = 0
    for obj in objects:  # type: ignore[union-attr]
        path = Path(obj["path"])
        try:
            sass, raw_path, hit = disassemble(path, tool.path, cuobjdump_version=version,
                                              sandbox=ctx.options.sandbox)
        except (RuntimeError, OSError) as err:
            return CheckResult.error(NAME, f"{obj['source']}: {err}")
        hits += hit
        stem = obj["source"].replace("/", "_")
        shutil.copyfile(raw_path, out_dir / f"{stem}.sass")
        expected = list(obj.get("arches") or [])
        for arch in expected:
            if arch not in sass.arches:
                findings.append(Finding(severity="error", key=obj["source"],
                                        reason=f"no SASS for {arch} (binary has {', '.join(sass.arches) or 'none'}): "
                                               "built for the wrong architecture"))
        for arch in sass.arches:
            if arch not in H100_ARCHES:
                # A kernel with no H100 target at all is compiled for its own (compile's plan says so).
                own_only = not any(a in H100_ARCHES for a in expected)
                findings.append(Finding(severity="note" if own_only else "warning", key=obj["source"],
                                        reason=f"SASS for {arch} only: the kernel has no H100 target" if own_only
                                        else f"also carries SASS for {arch}, not an H100 target"))
        all_kernels += [(obj["source"], k) for k in sass.kernels]
    names = _demangler(sorted({k.name for _, k in all_kernels}))
    summary = {}
    for source, k in all_kernels:
        shown = names.get(k.name, k.name)
        hist = k.histogram
        summary[f"{shown} [{k.arch}]"] = {"source": source, "instructions": len(k.opcodes), "histogram": hist}
        if k.empty:
            findings.append(Finding(
                severity="error", key=f"{shown} [{k.arch}]",
                reason=f"empty kernel body on {k.arch} ({source}): the code was compiled away, e.g. under an "
                       "#if __CUDA_ARCH__ guard this target does not meet"))
        else:
            top = ", ".join(f"{op} {n}" for op, n in list(hist.items())[:8])
            findings.append(Finding(severity="note", key=f"{shown} [{k.arch}]",
                                    reason=f"{len(k.opcodes)} instructions: {top}"))
    if not all_kernels:
        findings.append(Finding(severity="error", key="sass",
                                reason="no GPU kernel in any compiled CUDA source"))
    metrics: dict = {"sass_kernels": len(all_kernels),
                     "empty_kernels": sum(k.empty for _, k in all_kernels),
                     "instructions": sum(len(k.opcodes) for _, k in all_kernels),
                     "cache_hit": hits == len(objects)}  # type: ignore[arg-type]
    if spec is not None:
        for marker in spec.require:
            count = sum(k.has(marker) for _, k in all_kernels)
            metrics[f"marker.{marker}"] = count
            if count == 0:
                findings.append(Finding(severity="error", key=f"sass.require.{marker}",
                                        reason=f"required instruction {marker} appears in no kernel"))
        for marker in spec.forbid:
            where = [f"{names.get(k.name, k.name)} [{k.arch}]" for _, k in all_kernels if k.has(marker)]
            metrics[f"marker.{marker}"] = sum(k.has(marker) for _, k in all_kernels)
            if where:
                findings.append(Finding(severity="error", key=f"sass.forbid.{marker}",
                                        reason=f"forbidden instruction {marker} appears in {where[0]}"
                                               + (f" (+{len(where) - 1} more)" if len(where) > 1 else "")))
    totals = Counter()
    for _, k in all_kernels:
        totals.update(k.histogram)
    (out_dir / "histogram.json").write_text(json.dumps({"kernels": summary, "total": dict(totals.most_common())},
                                                       indent=1))
    ok = f"{len(all_kernels)} kernel bodies on {', '.join(sorted({k.arch for _, k in all_kernels}))}"
    return CheckResult.from_findings(NAME, findings, ok_reason=ok, metrics=metrics,
                                     log_path=str(out_dir / "histogram.json"))
