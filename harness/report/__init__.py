"""Reports: terminal tables, JSON, JUnit, HTML and PNG charts from a ReportRun.

Library functions only; the CLI commands (`eval`, `runs show`, `runs compare`, `plot`) build a
ReportRun from the store and call these.
"""

from harness.report.compare import CompareResult, CompareRow, compare_runs
from harness.report.html import render_html, write_html
from harness.report.json_out import from_json, to_json
from harness.report.junit import write_junit
from harness.report.model import ReportFile, ReportRun, ReportTrial, attach_artifacts
from harness.report.plots import write_plots
from harness.report.summary import Summary, check_gates, summarize
from harness.report.terminal import render_compare, render_terminal

__all__ = [
    "CompareResult", "CompareRow", "ReportFile", "ReportRun", "ReportTrial", "Summary",
    "attach_artifacts", "check_gates", "compare_runs", "from_json", "render_compare", "render_html",
    "render_terminal", "summarize", "to_json", "write_html", "write_junit", "write_plots",
]
