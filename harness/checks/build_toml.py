"""The build_toml check: is this a kernel-builder project the builder would accept and
that targets an H100? (REFERENCE.md §3, "How strict to be".)

Two layers:
1. the `kernels` package's own parser (harness/project/kernels_parser.py) decides what the
   pinned builder accepts, and which format (edition 5, legacy v4, legacy v3, newer) it is;
2. our checks cover what that parser accepts but the builder or an H100 would not:
   capability strings, sources that do not exist or are not listed, builder-supplied
   files shipped by the project, the Python package, registrations with a hard-coded
   op namespace (kernel-builder's own torch-ops check, re-implemented here).

Findings name a key path (`kernel.relu.cuda-capabilities`) or a file, and say why.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.checks.base import CheckContext
from harness.checks.build_toml_files import (
    _builder_file_findings,
    _include_findings,
    _python_findings,
    _SourceList,
    _src_entry_findings,
)
from harness.common.errors import UserError
from harness.common.results import CheckResult, Finding
from harness.project.capabilities import (
    ARCH_SPECIFIC,
    BUILDER_DEFAULT_CAPABILITIES,
    CUDA13_CAPABILITIES,
    H100,
    KNOWN_CAPABILITIES,
    Capability,
    capability_fix,
    covers,
    parse_capability,
)
from harness.project.info import load_build_toml
from harness.project.kernels_parser import ParsedBuild, parse_build
from harness.project.sources import source_files

log = logging.getLogger(__name__)

NAME = "build_toml"


CHECKED_BACKENDS = {"cuda", "cpu"}
FRAMEWORKS = ("torch", "torch-noarch", "tvm-ffi")
_NAME_RE = re.compile(r"^[a-z][-a-z0-9]*[a-z0-9]$")


@dataclass
class BuildTomlReport:
    """Everything the check found, before it is turned into a CheckResult."""

    findings: list[Finding] = field(default_factory=list)
    format: str = "unknown"
    edition: int | None = None
    kernel_counts: dict[str, int] = field(default_factory=dict)
    newer_edition: str | None = None
    """Set to the skip reason when the file is an edition newer than the installed parser."""
    internal_error: str | None = None
    """Set when the kernels parser could not run (a harness fault)."""


def _one_line(message: str) -> str:
    """Parser messages can span lines (TOML carets, name rules): keep the words, one line."""
    kept = []
    for line in message.splitlines():
        line = line.strip()
        if not line or re.match(r"^(\d+\s*)?\|", line):  # source excerpt / caret lines
            continue
        kept.append(line)
    return "; ".join(kept)


def _locate_parser_error(message: str, raw: dict | None) -> str:
    """Name the key path the parser's message is about, where it can be told."""
    if raw is None:
        return "build.toml"
    if "edition" in message:
        return "general.edition"
    if "Invalid kernel name" in message:
        return "general.name"
    m = re.search(r"[Uu]nknown field `?([\w-]+)`?", message)
    if m:
        wanted = m[1]
        if wanted in raw:
            return wanted
        for table, value in raw.items():
            if isinstance(value, dict) and wanted in value:
                return f"{table}.{wanted}"
        for name, spec in _kernel_tables(raw).items():
            if wanted in spec:
                return f"kernel.{name}.{wanted}"
    m = re.search(r"Missing field `?([\w-]+)`?", message)
    if m:
        wanted = m[1]
        general = raw.get("general")
        if isinstance(general, dict) and wanted in ("name", "version", "license", "backends") and wanted not in general:
            return f"general.{wanted}"
        for name, spec in _kernel_tables(raw).items():
            if wanted not in spec:
                return f"kernel.{name}.{wanted}"
    if "enum Framework" in message:
        return "torch"
    return "build.toml"


def _kernel_tables(raw: dict) -> dict[str, dict]:
    table = raw.get("kernel")
    if not isinstance(table, dict):
        return {}
    return {name: spec for name, spec in table.items() if isinstance(spec, dict)}


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- capabilities

def _capability_findings(kernel: str, spec: dict, required: list[Capability]) -> list[Finding]:
    key = f"kernel.{kernel}.cuda-capabilities"
    findings: list[Finding] = []
    if "cuda-capabilities" not in spec:
        default = [c for c in map(parse_capability, BUILDER_DEFAULT_CAPABILITIES) if c]
        findings.append(Finding(severity="note", key=key, reason=(
            "not set: kernel-builder's default list applies ("
            + ", ".join(BUILDER_DEFAULT_CAPABILITIES) + " with CUDA 13), which includes 9.0")))
        usable = default
    else:
        usable = []
        dropped: list[str] = []
        values = spec["cuda-capabilities"]
        for text in _strings(values):
            cap = parse_capability(text)
            if cap is None:
                fix = capability_fix(text)
                hint = f'; write "{fix}"' if fix else '; use the builder\'s form, e.g. "9.0" or "9.0a"'
                findings.append(Finding(severity="error", key=key, reason=(
                    f"{text!r} is not a capability the builder understands (it produces no target){hint}")))
                continue
            if cap.version not in KNOWN_CAPABILITIES:
                # kernel-builder intersects the list with the toolkit's architectures, so an entry
                # no GPU has is dropped; only an empty result fails the build (below).
                dropped.append(f"{text!r}: no NVIDIA GPU has compute capability {cap.major}.{cap.minor}")
                findings.append(Finding(severity="note", key=key, reason=dropped[-1] + " (dropped, as "
                                        "kernel-builder's intersection with the toolkit's architectures drops it)"))
                continue
            if cap.suffix == "a" and cap.version not in ARCH_SPECIFIC:
                findings.append(Finding(severity="error", key=key, reason=(
                    f"{text!r}: architecture-specific ('a') targets exist only for 9.0 and later")))
                continue
            if cap.suffix == "f" and cap.major < 10:
                findings.append(Finding(severity="error", key=key, reason=(
                    f"{text!r}: family ('f') targets exist only for 10.0 and later")))
                continue
            if cap.version not in CUDA13_CAPABILITIES:
                findings.append(Finding(severity="note", key=key, reason=(
                    f"{text!r} dropped: CUDA 13 cannot target sm_{cap.major}{cap.minor} "
                    "(kernel-builder drops it the same way)")))
                continue
            usable.append(cap)
        if not usable and not any(f.severity == "error" for f in findings):
            why = f" ({'; '.join(dropped)})" if dropped else ""
            findings.append(Finding(severity="error", key=key, reason=(
                f"no capability left that CUDA 13 can build{why}: the builder fails with an empty set of "
                "capabilities")))
    if usable and not any(c.version == H100 for c in usable) and not required:
        # Valid for kernel-builder (an sm_80 or sm_100 variant beside the H100 one); a case that
        # asks for 9.0 fails below instead.
        listed = ", ".join(f"{c.major}.{c.minor}{c.suffix}{'+PTX' if c.ptx else ''}" for c in usable)
        findings.append(Finding(severity="note", key=key, reason=(
            f"no H100 target (it has {listed}): an H100 cannot run this kernel; compile checks its sources "
            "for its own newest target")))
    for need in required:
        if usable and not covers(usable, need):
            text = f"{need.major}.{need.minor}{need.suffix}"
            findings.append(Finding(severity="error", key=key, reason=(
                f"the case asks for {text!r}, which this kernel does not build for")))
    return findings


# --------------------------------------------------------------------------- sources


# --------------------------------------------------------------------------- builder files, Python


# --------------------------------------------------------------------------- the whole project

def _framework(raw: dict) -> str | None:
    present = [f for f in FRAMEWORKS if f in raw]
    return present[0] if len(present) == 1 else None


def analyse(root: Path, *, required_caps: list[str] | None = None) -> BuildTomlReport:
    """Validate the project at `root`. Pure apart from reading files (and running the
    kernels parser in a child process)."""
    report = BuildTomlReport()
    findings = report.findings
    toml_path = root / "build.toml"
    if toml_path.is_symlink():
        findings.append(Finding(severity="error", key="build.toml", reason="build.toml is a symlink: refused"))
        return report
    if not toml_path.is_file():
        findings.append(Finding(severity="error", key="build.toml", reason="no build.toml at the project root"))
        return report

    parsed: ParsedBuild = parse_build(root)
    report.format, report.edition = parsed.format, parsed.edition
    if parsed.internal_error:
        report.internal_error = parsed.internal_error
        return report
    if parsed.format == "newer":
        report.newer_edition = (f"edition {parsed.edition} is newer than kernels {parsed.parser_version}: "
                                "not checked (the project may be fine)")
        return report

    try:
        raw: dict | None = load_build_toml(toml_path.parent)
    except UserError:
        raw = None

    if parsed.format == "legacy-v3":
        findings.append(Finding(severity="error", key="general.edition", reason=(
            "legacy (v3) build.toml: no longer accepted by the builder; migrate it with "
            "`kernel-builder update-build` to edition 5")))
    elif parsed.format == "legacy-v4":
        findings.append(Finding(severity="warning", key="general.edition", reason=(
            f"no edition: legacy v4 format, upgraded to edition 5 in memory by kernels "
            f"{parsed.parser_version}; add `edition = 5` (kernel-builder update-build)")))
    elif not parsed.ok:
        findings.append(Finding(severity="error", key=_locate_parser_error(parsed.error or "", raw), reason=(
            f"kernels {parsed.parser_version} parser: {_one_line(parsed.error or 'rejected')}")))
    if raw is None:
        return report

    general = raw.get("general") if isinstance(raw.get("general"), dict) else {}
    name = general.get("name")
    if isinstance(name, str) and not _NAME_RE.match(name) and "general.name" not in {f.key for f in findings}:
        findings.append(Finding(severity="error", key="general.name", reason=(
            f"{name!r}: must start with a lowercase letter and hold only lowercase letters, digits and dashes")))
    backends = _strings(general.get("backends"))
    for backend in backends:
        if backend not in CHECKED_BACKENDS:
            findings.append(Finding(severity="note", key="general.backends",
                                    reason=f"{backend!r} builds are not checked by kernelgrade"))

    framework = _framework(raw)
    kernels = _kernel_tables(raw)
    counts: dict[str, int] = {}
    lists: list[_SourceList] = []
    required = [c for c in map(parse_capability, required_caps or []) if c]
    cuda_kernels: list[str] = []
    for kname, spec in kernels.items():
        backend = spec.get("backend") if isinstance(spec.get("backend"), str) else "unknown"
        counts[backend] = counts.get(backend, 0) + 1
        checked = backend in CHECKED_BACKENDS
        lists.append(_SourceList(key=f"kernel.{kname}.src", entries=_strings(spec.get("src")),
                                 include_dirs=_strings(spec.get("include")), checked=checked))
        if not checked:
            findings.append(Finding(severity="note", key=f"kernel.{kname}",
                                    reason=f"backend {backend!r}: not checked by kernelgrade"))
            continue
        if framework == "torch-noarch":
            findings.append(Finding(severity="warning", key=f"kernel.{kname}", reason=(
                "[torch-noarch] projects are not compiled: the builder ignores this kernel")))
            continue
        if backends and backend not in backends:
            findings.append(Finding(severity="error", key=f"kernel.{kname}.backend", reason=(
                f"{backend!r} is not in general.backends, so the builder never builds this kernel")))
        if backend == "cuda":
            cuda_kernels.append(kname)
            findings.extend(_capability_findings(kname, spec, required))
    report.kernel_counts = counts

    if (counts.get("cuda") or counts.get("cpu")) and framework is None and not any(f in raw for f in FRAMEWORKS):
        if not any(f.key == "torch" for f in findings):
            findings.append(Finding(severity="error", key="torch", reason=(
                "no [torch] section: CUDA/CPU kernels need one ([tvm-ffi] and [torch-noarch] projects excepted)")))
    if required and not cuda_kernels:
        findings.append(Finding(severity="error", key="kernel", reason=(
            "no CUDA kernel is built, but the case asks for "
            + ", ".join(f"{c.major}.{c.minor}{c.suffix}" for c in required))))

    if framework in ("torch", "tvm-ffi"):
        table = raw[framework] if isinstance(raw[framework], dict) else {}
        lists.append(_SourceList(key=f"{framework}.src", entries=_strings(table.get("src")),
                                 include_dirs=_strings(table.get("include")), checked=True))
    all_listed = {PurePosixPath(e).as_posix() for s in lists for e in s.entries}
    findings.extend(_src_entry_findings(root, lists))
    include_findings, reached = _include_findings(root, lists, all_listed)
    findings.extend(include_findings)
    for rel in source_files(root):
        if rel not in all_listed and rel not in reached and PurePosixPath(rel).name != "registration.h":
            findings.append(Finding(severity="note", key=rel, reason=(
                "not listed in any src and not #included by a listed source: the builder ignores it")))
    findings.extend(_builder_file_findings(root))
    if isinstance(name, str) and _NAME_RE.match(name) and framework is not None:
        ext_dir = "tvm-ffi-ext" if framework == "tvm-ffi" else "torch-ext"
        findings.extend(_python_findings(root, root / ext_dir / name.replace("-", "_")))
    return report


def validate_project(root: Path, *, required_caps: list[str] | None = None) -> list[Finding]:
    """Findings for the project at `root` (see analyse). A newer edition gives one note."""
    report = analyse(root, required_caps=required_caps)
    if report.newer_edition:
        return [Finding(severity="note", key="general.edition", reason=report.newer_edition)]
    if report.internal_error:
        return [Finding(severity="error", key="build.toml", reason=f"kernelgrade could not run the parser: {report.internal_error}")]
    return report.findings


def _metrics(report: BuildTomlReport) -> dict:
    metrics: dict = {"edition": report.edition, "format": report.format,
                     "kernels_total": sum(report.kernel_counts.values())}
    for backend, count in sorted(report.kernel_counts.items()):
        metrics[f"kernels_{backend}"] = count
    return metrics


def check_build_toml(ctx: CheckContext) -> CheckResult:
    extraction = [f for f in ctx.state.get("extraction", []) or [] if isinstance(f, Finding)]
    if ctx.project_dir is None:
        findings = list(extraction)
        if not any(f.severity == "error" for f in findings):
            findings.append(Finding(severity="error", key="(answer)", reason="no files found in the answer"))
        return CheckResult.from_findings(NAME, findings)
    required = ctx.case.kernel.capabilities if ctx.case is not None and ctx.case.kernel is not None else None
    report = analyse(ctx.project_dir, required_caps=required)
    if report.internal_error:
        return CheckResult.error(NAME, f"kernels parser unavailable: {report.internal_error}")
    if report.newer_edition:
        ctx.state["build_toml_newer_edition"] = True
        result = CheckResult.skip(NAME, report.newer_edition)
        result.metrics = _metrics(report)
        return result
    # A path the extraction refused (absolute, '..', over the limits) is a defect of the
    # answer as given even when the files that were written form a sound project: the
    # prompt asks for relative paths only. Errors stay errors; notes are left out.
    carried = [Finding(severity=f.severity, key=f"answer: {f.key}",
                       reason=f"not written: {f.reason}" if f.severity == "error" else f.reason)
               for f in extraction if f.severity != "note"]
    kinds = ", ".join(f"{n} {b}" for b, n in sorted(report.kernel_counts.items())) or "no kernels"
    return CheckResult.from_findings(NAME, carried + report.findings, metrics=_metrics(report),
                                     ok_reason=f"{report.format}, {kinds}")


__all__ = ["BUILDER_DEFAULT_CAPABILITIES", "BuildTomlReport", "analyse", "check_build_toml",
           "validate_project"]
