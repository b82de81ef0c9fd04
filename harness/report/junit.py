"""JUnit XML (`--junit FILE`): one testcase per trial, every check listed, so CI systems can show it.

pass -> passed testcase; fail -> <failure>; error -> <error> (a harness or model-call fault,
not the candidate's); incomplete (every required check skipped) -> <skipped>. Each check
appears as a property `check.<name>` = "<status>: <reason>" and in system-out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from harness.report.model import ReportRun, ReportTrial


def _testcase(trial: ReportTrial) -> ET.Element:
    case = ET.Element("testcase", {
        # dots split class names into packages in CI viewers; model ids often have them
        "classname": f"kernelgrade.{trial.model.replace('.', '_')}.{trial.arm}",
        "name": f"{trial.case_id}#{trial.run_index}",
        "time": f"{trial.latency_s or 0.0:.3f}",
    })
    props = ET.SubElement(case, "properties")
    lines = []
    for check in trial.checks:
        value = f"{check.status}: {check.reason}" if check.reason else check.status
        ET.SubElement(props, "property", {"name": f"check.{check.name}", "value": value})
        lines.append(f"{check.name}: {value}")
        lines.extend(f"    [{f.severity}] {f.key}: {f.reason}" for f in check.findings if f.severity != "note")
    if trial.device:
        ET.SubElement(props, "property", {"name": "device", "value": trial.device})
    reason = trial.verdict_reason or trial.error or trial.verdict
    if trial.verdict == "fail":
        fail = ET.SubElement(case, "failure", {"message": reason, "type": "fail"})
        fail.text = "\n".join(lines)
    elif trial.verdict == "error":
        err = ET.SubElement(case, "error", {"message": trial.error or reason, "type": "error"})
        err.text = "\n".join(lines)
    elif trial.verdict == "incomplete":
        skipped = [f"{c.name}: {c.reason}" for c in trial.checks if c.status == "skip"]
        ET.SubElement(case, "skipped", {"message": f"{reason}; " + "; ".join(skipped) if skipped else reason})
    out = ET.SubElement(case, "system-out")
    out.text = "\n".join(lines)
    return case


def junit_tree(run: ReportRun) -> ET.ElementTree:
    root = ET.Element("testsuites", {"name": f"kernelgrade run {run.run_id}"})
    totals: Counter[str] = Counter()
    for model in run.models:
        for arm in run.arms:
            trials = [t for t in run.trials if t.model == model and t.arm == arm]
            if not trials:
                continue
            counts = Counter(t.verdict for t in trials)
            suite = ET.SubElement(root, "testsuite", {
                "name": f"{model} {arm}",
                "tests": str(len(trials)),
                "failures": str(counts["fail"]),
                "errors": str(counts["error"]),
                "skipped": str(counts["incomplete"]),
                "time": f"{sum(t.latency_s or 0.0 for t in trials):.3f}",
            })
            for trial in sorted(trials, key=lambda t: (t.case_id, t.run_index)):
                suite.append(_testcase(trial))
            totals.update(counts)
            totals["tests"] += len(trials)
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["fail"]))
    root.set("errors", str(totals["error"]))
    root.set("skipped", str(totals["incomplete"]))
    return ET.ElementTree(root)


def write_junit(run: ReportRun, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(run)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
