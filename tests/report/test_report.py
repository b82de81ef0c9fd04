"""Report layer: summary numbers on a hand-built run, renderers, gates, compare.

The ReportRun below is a FIXTURE built by hand (no model was called); the expected numbers
in the tests are worked out by hand from it (comments show the arithmetic).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from rich.console import Console

from harness.report import (
    attach_artifacts, check_gates, compare_runs, from_json, render_compare, render_terminal,
    summarize, to_json, write_html, write_junit, write_plots,
)
from harness.report.model import ReportRun, ReportTrial
from harness.common.results import CheckResult, Finding
from tests.prereq import missing

Z95 = 1.959963984540054


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return centre - half, centre + half


# ---- fixture: checks of a kernel trial --------------------------------------------------

def _pass_all(speedup: float, device: str = "cpu") -> list[CheckResult]:
    return [
        CheckResult(name="markers", status="pass", reason="1/1 markers",
                    metrics={"assertions_passed": 1, "assertions_total": 1}),
        CheckResult(name="build_toml", status="pass", reason="ok",
                    findings=[Finding(severity="note", key="general.name", reason="rmsnorm")]),
        CheckResult(name="compile", status="pass", reason="built", log_path="logs/compile.txt"),
        CheckResult(name="sass", status="pass", reason="markers ok"),
        CheckResult(name="run", status="pass", reason="max_abs_err 1e-6 <= atol",
                    metrics={"max_abs_err": 1e-6}, device=device),
        CheckResult(name="speedup", status="pass", reason=f"{speedup}x",
                    metrics={"speedup": speedup}, device=device),
    ]


def _fail_compile() -> list[CheckResult]:
    return [
        CheckResult(name="markers", status="pass", reason="1/1",
                    metrics={"assertions_passed": 1, "assertions_total": 1}),
        CheckResult(name="build_toml", status="pass", reason="ok"),
        CheckResult(name="compile", status="fail", reason="nvcc: error: identifier undefined"),
        CheckResult.skip("sass", "blocked by compile"),
        CheckResult.skip("run", "blocked by compile"),
        CheckResult.skip("speedup", "blocked by run"),
    ]


def _fail_wrong_result() -> list[CheckResult]:
    return [
        CheckResult(name="markers", status="pass", reason="1/1",
                    metrics={"assertions_passed": 1, "assertions_total": 1}),
        CheckResult(name="build_toml", status="pass", reason="ok"),
        CheckResult(name="compile", status="pass", reason="built"),
        CheckResult(name="sass", status="pass", reason="ok"),
        CheckResult(name="run", status="fail", reason="max_abs_err 0.5 > atol 1e-3",
                    metrics={"max_abs_err": 0.5}, device="cpu"),
        CheckResult.skip("speedup", "blocked by run"),
    ]


def _fail_build_toml() -> list[CheckResult]:
    return [
        CheckResult(name="markers", status="pass", reason="1/1",
                    metrics={"assertions_passed": 1, "assertions_total": 1}),
        CheckResult.from_findings("build_toml", [Finding(severity="error", key="kernel.x.cuda-capabilities",
                                                         reason='"sm_90" is not a capability; use "9.0"')]),
        CheckResult.skip("compile", "blocked by build_toml"),
        CheckResult.skip("sass", "blocked by compile"),
        CheckResult.skip("run", "blocked by compile"),
        CheckResult.skip("speedup", "blocked by run"),
    ]


def _fail_load() -> list[CheckResult]:
    return [
        CheckResult(name="markers", status="pass", reason="1/1",
                    metrics={"assertions_passed": 1, "assertions_total": 1}),
        CheckResult(name="build_toml", status="pass", reason="ok"),
        CheckResult(name="compile", status="pass", reason="built"),
        CheckResult(name="sass", status="pass", reason="ok"),
        CheckResult(name="run", status="fail", reason="import failed: undefined symbol", device="cpu"),
        CheckResult.skip("speedup", "blocked by run"),
    ]


def _incomplete() -> list[CheckResult]:
    return [CheckResult.skip(n, "sandbox unavailable") for n in ("markers", "build_toml", "compile",
                                                                   "sass", "run", "speedup")]


def _trial(model, arm, case, idx, verdict, checks, *, tokens=(100, 200), cost=0.01, **kw) -> ReportTrial:
    return ReportTrial(
        run_id="r-fixture", case_id=case, model=model, arm=arm, run_index=idx, verdict=verdict,
        verdict_reason=kw.pop("reason", verdict), assertions_passed=sum(c.status == "pass" for c in checks),
        assertions_total=len(checks), input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=cost,
        checks=checks, device=kw.pop("device", "cpu"), prompt=f"PROMPT {case} {arm}",
        answer=f"ANSWER {case} {arm} #{idx}", **kw)


def fixture_run() -> ReportRun:
    """FIXTURE. m1: kernel cases c1..c4 x 2 runs; m2: text-only cases d1..d8 x 1 run."""
    b, w = "baseline", "with_skill"
    trials = [
        # m1 baseline: 1 pass, 5 fail, 1 error, 1 incomplete.
        _trial("m1", b, "c1", 0, "pass", _pass_all(1.2)),
        _trial("m1", b, "c1", 1, "fail", _fail_compile()),
        _trial("m1", b, "c2", 0, "fail", _fail_wrong_result()),
        _trial("m1", b, "c2", 1, "fail", _fail_wrong_result()),
        _trial("m1", b, "c3", 0, "fail", _fail_build_toml()),
        _trial("m1", b, "c3", 1, "error", [], tokens=(0, 0), cost=None, error="HTTP 529 overloaded after 5 retries"),
        _trial("m1", b, "c4", 0, "incomplete", _incomplete()),
        _trial("m1", b, "c4", 1, "fail", _fail_load()),
        # m1 with skill: 7 pass, 1 fail; speedups on CPU 2, .5, 4, 1, 2, 1 and one GPU trial at 3.
        _trial("m1", w, "c1", 0, "pass", _pass_all(2.0), tokens=(300, 100), cost=0.02,
               sass_histogram={"rms_norm_kernel": {"FFMA": 40, "LDG.E.128": 8, "SHFL.BFLY": 10, "EXIT": 1}},
               logs={"compile": "nvcc -gencode arch=compute_90,code=sm_90 ... ok"}),
        _trial("m1", w, "c1", 1, "pass", _pass_all(0.5), tokens=(300, 100), cost=0.02),
        _trial("m1", w, "c2", 0, "pass", _pass_all(4.0), tokens=(300, 100), cost=0.02),
        _trial("m1", w, "c2", 1, "pass", _pass_all(1.0), tokens=(300, 100), cost=0.02),
        _trial("m1", w, "c3", 0, "pass", _pass_all(2.0), tokens=(300, 100), cost=0.02),
        _trial("m1", w, "c3", 1, "fail", _fail_wrong_result(), tokens=(300, 100), cost=0.02),
        _trial("m1", w, "c4", 0, "pass", _pass_all(1.0), tokens=(300, 100), cost=0.02),
        _trial("m1", w, "c4", 1, "pass", _pass_all(3.0, device="cuda"), tokens=(300, 100), cost=0.02,
               device="cuda"),
    ]
    marker_fail = [CheckResult(name="markers", status="fail", reason="contains '9.0': not found",
                               metrics={"assertions_passed": 0, "assertions_total": 1})]
    marker_pass = [CheckResult(name="markers", status="pass", reason="1/1",
                               metrics={"assertions_passed": 1, "assertions_total": 1})]
    for i in range(1, 9):
        trials.append(_trial("m2", b, f"d{i}", 0, "fail", marker_fail, tokens=(50, 50), cost=None))
        trials.append(_trial("m2", w, f"d{i}", 0, "pass", marker_pass, tokens=(150, 50), cost=None))
    return ReportRun(run_id="r-fixture", skill_name="h100-kernels", skill_sha256="ab" * 32, skill_tokens=1234,
                     level="run", device="cpu", env={"python": "3.11", "torch": "2.13.0+cpu"},
                     notes=["single-turn evaluation"], trials=trials)


@pytest.fixture(scope="module")
def run() -> ReportRun:
    return fixture_run()


@pytest.fixture(scope="module")
def summary(run):
    return summarize(run, n_boot=2000)


# ---- summary numbers ----------------------------------------------------------------------

def test_arm_counts_and_pass_rate(summary):
    base = summary.arm("m1", "baseline")
    assert (base.n, base.passed, base.failed, base.errors, base.incomplete) == (8, 1, 5, 1, 1)
    assert base.pass_rate.rate == pytest.approx(1 / 6)  # errors and incomplete left out
    assert (base.pass_rate.lo, base.pass_rate.hi) == pytest.approx(wilson_by_hand(1, 6))
    with_ = summary.arm("m1", "with_skill")
    assert (with_.passed, with_.failed, with_.errors) == (7, 1, 0)
    assert (with_.pass_rate.lo, with_.pass_rate.hi) == pytest.approx(wilson_by_hand(7, 8))


def test_check_rates(summary):
    r = summary.arm("m1", "baseline").rates
    # completed: c1#0 pass, c1#1 compile fail, c2 x2 wrong result, c3#0 bad build.toml, c4#1 load fail
    assert (r["build_toml"].k, r["build_toml"].n) == (5, 6)
    assert (r["compile"].k, r["compile"].n) == (4, 6)  # blocked by build_toml counts as not compiled
    assert (r["run"].k, r["run"].n) == (3, 6)  # c1#0 and both c2 ran; the load failure did not
    assert (r["correct"].k, r["correct"].n) == (1, 6)
    m2 = summary.arm("m2", "baseline").rates
    assert m2["compile"].rate is None and m2["compile"].skipped == "not required"


def test_check_error_is_not_a_failed_rate():
    run = fixture_run()
    trials = []
    for t in run.trials:
        if (t.model, t.arm, t.case_id, t.run_index) == ("m1", "baseline", "c2", 0):
            checks = [CheckResult.error("compile", "internal error: OSError") if c.name == "compile" else c
                      for c in t.checks]
            t = t.model_copy(update={"checks": checks})
        trials.append(t)
    s = summarize(run.model_copy(update={"trials": trials}), n_boot=200)
    compile_rate = s.arm("m1", "baseline").rates["compile"]
    assert (compile_rate.k, compile_rate.n) == (3, 5)  # the errored compile leaves the denominator
    assert ("m1|baseline|c2|0", "compile") in [(e.trial, e.where) for e in s.errors]


def test_speedup_geomean_per_device_never_pooled(summary):
    with_ = summary.arm("m1", "with_skill")
    by_dev = {s.device: s for s in with_.speedup}
    assert set(by_dev) == {"cpu", "cuda"}
    assert by_dev["cpu"].geomean == pytest.approx(math.sqrt(2))  # (2 * .5 * 4 * 1 * 2 * 1) ** (1/6)
    assert by_dev["cpu"].count == 6
    assert by_dev["cpu"].lo <= by_dev["cpu"].geomean <= by_dev["cpu"].hi
    assert (by_dev["cuda"].geomean, by_dev["cuda"].count) == (pytest.approx(3.0), 1)
    # fast_p per device, over completed trials at the run level: CPU 3 of 7 above 1.0, 1 of 7 above 2.0
    assert with_.fast_p["cpu"]["1.0"] == pytest.approx(3 / 7)
    assert with_.fast_p["cpu"]["2.0"] == pytest.approx(1 / 7)
    assert with_.fast_p["cuda"]["1.0"] == 1.0
    base = summary.arm("m1", "baseline")
    assert [(s.device, s.geomean, s.count) for s in base.speedup] == [("cpu", pytest.approx(1.2), 1)]


def test_pass_at_k(summary):
    # m1 with skill per case (2 runs each): c1 2/2, c2 2/2, c3 1/2, c4 2/2.
    # pass@1 = mean(1, 1, .5, 1) = .875; pass@2 = 1 for every case (c3: 1 - C(1,2)/C(2,2) = 1).
    assert summary.arm("m1", "with_skill").pass_at_k == {"1": pytest.approx(0.875), "2": 1.0}
    # m1 baseline completed: c1 1/2, c2 0/2, c3 0/1, c4 0/1 -> k only up to 1; pass@1 = .5/4
    assert summary.arm("m1", "baseline").pass_at_k == {"1": pytest.approx(0.125)}


def test_tokens_and_cost(summary):
    base = summary.arm("m1", "baseline")
    assert base.avg_input_tokens == 100 and base.avg_output_tokens == 200  # the error trial is left out
    assert base.cost_usd == pytest.approx(0.07)
    assert summary.arm("m2", "baseline").cost_usd is None


def test_lift_lines(summary):
    m1 = next(line for line in summary.lifts if line.model == "m1")
    assert m1.lift == pytest.approx(7 / 8 - 1 / 6)
    assert m1.lift_lo <= m1.lift <= m1.lift_hi
    # pairs completed in both arms: c1#0, c1#1, c2#0, c2#1, c3#0, c4#1; only-with-skill passes: 5
    assert (m1.pairs, m1.b, m1.c) == (6, 0, 5)
    assert m1.p_value == pytest.approx(2 / 32)
    assert m1.verdict == "not enough runs"
    assert m1.token_savings == pytest.approx(1 - 400 / 300)
    assert m1.upskill_beneficial and m1.upskill_label == "upskill rule"
    m2 = next(line for line in summary.lifts if line.model == "m2")
    assert (m2.lift, m2.b, m2.c) == (1.0, 0, 8)
    assert m2.p_value == pytest.approx(2 / 256)
    assert m2.verdict == "helps"


def test_skips_and_errors_listed(summary):
    skips = {(s.check, s.reason): s.count for s in summary.skipped}
    assert skips[("compile", "blocked by build_toml")] == 1
    assert skips[("run", "blocked by compile")] == 2
    assert ("markers", "sandbox unavailable") in skips
    assert [(e.trial, e.where) for e in summary.errors] == [("m1|baseline|c3|1", "trial")]


def test_level_skips_are_not_rates():
    run = fixture_run()
    trials = []
    for t in run.trials:
        checks = [c if c.name not in ("run", "speedup") else CheckResult.skip(c.name, "level compile")
                  for c in t.checks]
        trials.append(t.model_copy(update={"checks": checks}))
    s = summarize(run.model_copy(update={"level": "compile", "trials": trials}), n_boot=200)
    rates = s.arm("m1", "with_skill").rates
    assert rates["correct"].rate is None and rates["correct"].skipped == "level compile"
    assert s.arm("m1", "with_skill").fast_p == {}
    assert s.arm("m1", "with_skill").speedup == []
    console = Console(record=True, width=400)
    render_terminal(run.model_copy(update={"level": "compile", "trials": trials}), console, summary=s)
    assert "skip (level compile)" in console.export_text()


def test_pareto(summary):
    rows = {(p.model, p.arm): p for p in summary.pareto}
    assert rows[("m1", "baseline")].basis == "tokens"  # m2 has no price, so tokens are the basis
    # tokens per trial: m1 baseline 300 (17%), m1 with 400 (88%), m2 baseline 100 (0%), m2 with 200 (100%)
    assert rows[("m2", "with_skill")].on_front
    assert rows[("m2", "baseline")].on_front  # cheapest row stays on the front
    assert not rows[("m1", "baseline")].on_front
    assert not rows[("m1", "with_skill")].on_front  # 88% at 400 tokens < 100% at 200


def test_gates(summary):
    assert check_gates(summary) == []
    assert check_gates(summary, fail_under=0.5, min_lift=0.5) == []
    failed = check_gates(summary, fail_under=0.9)
    assert failed == ["m1 with_skill: pass rate 0.875 < --fail-under 0.9"]
    failed = check_gates(summary, min_lift=0.8)
    assert len(failed) == 1 and failed[0].startswith("m1: lift +0.708")


# ---- renderers ----------------------------------------------------------------------------

def test_terminal_render(run, summary):
    console = Console(record=True, width=400)
    render_terminal(run, console, summary=summary)
    text = console.export_text()
    for expected in ("17% (1/6)", "88% (7/8)", "100% (8/8)", "not enough runs", "helps",
                     "1.41x CPU", "3.00x GPU", "43% CPU", "upskill rule", "0.0625", "0.0078",
                     "skip compile: blocked by build_toml (1 trial)",
                     "error m1|baseline|c3|1 [trial]: HTTP 529", "single-turn evaluation", "+71 [+"):
        assert expected in text, expected
    assert "Kernel checks per model and arm" in text and "level run, device CPU" in text
    text_only = run.model_copy(update={"trials": [t for t in run.trials if t.model == "m2"], "level": "text"})
    console = Console(record=True, width=400)
    render_terminal(text_only, console)
    text = console.export_text()
    assert "Kernel checks" not in text and "device" not in text and "100% (8/8)" in text


def test_json_round_trip(run, summary):
    data = json.loads(json.dumps(to_json(run, summary=summary, gates_failed=[])))
    doc = from_json(data)
    assert doc.run == run
    assert doc.summary == summary
    assert doc.gates_failed == []
    assert data["summary"]["lifts"][1]["verdict"] == "helps"
    with pytest.raises(ValueError):
        from_json({**data, "schema_version": 99})


def test_junit_counts(run, tmp_path):
    path = write_junit(run, tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("32", "14", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    base = suites["m1 baseline"]
    assert (base.get("tests"), base.get("failures"), base.get("errors"), base.get("skipped")) == ("8", "5", "1", "1")
    cases = {c.get("name"): c for c in base.findall("testcase")}
    assert cases["c1#1"].find("failure").get("message") == "fail"
    props = {p.get("name"): p.get("value") for p in cases["c1#1"].iter("property")}
    assert props["check.compile"].startswith("fail: nvcc")
    assert props["check.run"] == "skip: blocked by compile"
    assert cases["c4#0"].find("skipped") is not None
    assert cases["c3#1"].find("error").get("message").startswith("HTTP 529")
    assert cases["c1#0"].find("failure") is None and cases["c1#0"].find("skipped") is None


def test_plots(run, summary, tmp_path):
    from matplotlib.patches import Rectangle

    from harness.report.plots import pass_rate_figure, speedup_figure
    from harness.report.summary import device_of, is_correct, speedup_of

    paths = write_plots(run, tmp_path, summary=summary)
    assert [p.name for p in paths] == ["r-fixture-pass-rate.png", "r-fixture-speedup.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The pass-rate chart draws exactly the summary's rates: one bar per (model, arm) that has one.
    ax = pass_rate_figure(summary).axes[0]
    drawn = sorted(round(b.get_height(), 6) for b in ax.patches if isinstance(b, Rectangle) and b.get_width() < 1)
    expected = sorted(round(100 * a.pass_rate.rate, 6) for a in summary.arms if a.pass_rate.rate is not None)
    assert drawn == expected and drawn
    assert [t.get_text() for t in ax.get_xticklabels()] == list(dict.fromkeys(a.model for a in summary.arms))
    # The speedup chart: one panel per device, labelled with it, holding every correct trial's speedup.
    fig = speedup_figure(run)
    want: dict[str, list[float]] = {}
    for t in run.trials:
        if t.verdict in ("pass", "fail") and is_correct(t) and speedup_of(t) is not None:
            want.setdefault(device_of(t, run), []).append(speedup_of(t))
    assert len(fig.axes) == len(want)
    for ax, device in zip(fig.axes, sorted(want)):
        assert ("CPU" in ax.get_title()) == (device == "cpu")
        points = sorted(y for coll in ax.collections for _, y in coll.get_offsets())
        assert points == pytest.approx(sorted(want[device]))
    text_only = run.model_copy(update={"trials": [t for t in run.trials if t.model == "m2"]})
    assert [p.name for p in write_plots(text_only, tmp_path / "t")] == ["r-fixture-pass-rate.png"]


def test_compare_runs(run):
    changed = []
    for t in run.trials:
        if t.model == "m2" and t.arm == "baseline":
            t = t.model_copy(update={"verdict": "pass"})
        changed.append(t)
    changed.append(_trial("m2", "baseline", "d9", 0, "pass", []))
    b = run.model_copy(update={"run_id": "r-b", "trials": changed})
    result = compare_runs(run, b, n_boot=500)
    rows = {(r.model, r.arm): r for r in result.rows}
    m2b = rows[("m2", "baseline")]
    assert (m2b.pairs, m2b.b, m2b.c, m2b.verdict) == (8, 0, 8, "B better")
    assert m2b.p_value == pytest.approx(2 / 256)
    assert (m2b.pass_a, m2b.pass_b, m2b.diff) == (0.0, 1.0, 1.0)
    same = rows[("m1", "with_skill")]
    assert (same.b, same.c, same.p_value, same.verdict) == (0, 0, 1.0, "not enough runs")
    assert result.only_in_b == ["m2 baseline d9"] and result.only_in_a == []
    console = Console(record=True, width=300)
    render_compare(result, console)
    assert "B better" in console.export_text()


def test_attach_artifacts(tmp_path):
    root = tmp_path / "data"
    project = root / "artifacts" / "r1" / "t0" / "project"
    (project / "torch-ext").mkdir(parents=True)
    (project / "build.toml").write_text('[general]\nname = "rmsnorm"\n')
    (project / "torch-ext" / "binding.so").write_bytes(b"\x7fELF\0\0\0")
    (root / "logs").mkdir()
    (root / "logs" / "compile.txt").write_text("nvcc output here")
    (tmp_path / "secret.txt").write_text("outside")
    # the layout harness/checks/sass.py writes
    (root / "logs" / "histogram.json").write_text(json.dumps(
        {"kernels": {"rms_norm_kernel [sm_90]": {"source": "a.cu", "instructions": 12,
                                                  "histogram": {"FFMA": 9, "EXIT": 1}}},
         "total": {"FFMA": 9, "EXIT": 1}}))
    checks = [CheckResult(name="compile", status="pass", log_path="logs/compile.txt"),
              CheckResult(name="sass", status="pass", log_path="logs/histogram.json"),
              CheckResult(name="run", status="fail", log_path="../secret.txt")]
    run = ReportRun(run_id="r1", trials=[_trial("m", "baseline", "c", 0, "fail", checks,
                                                artifacts_dir="artifacts/r1/t0")])
    trial = attach_artifacts(run, root).trials[0]
    files = {f.path: f for f in trial.files}
    assert files["build.toml"].text.startswith("[general]")
    assert files["torch-ext/binding.so"].text is None  # binary: listed, not embedded
    assert trial.logs == {"compile": "nvcc output here"}  # the path outside the data dir is ignored
    assert trial.sass_histogram == {"rms_norm_kernel [sm_90]": {"FFMA": 9, "EXIT": 1}}


# ---- HTML in a real headless Chromium -----------------------------------------------------

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Elements(HTMLParser):
    """Collects every element's attributes by id, and the text inside #grid-counts."""

    def __init__(self):
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_counts = False
        self.counts_text = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.by_id[attributes["id"]] = {"_tag": tag, **attributes}
        self._in_counts = attributes.get("id") == "grid-counts"

    def handle_data(self, data):
        if self._in_counts:
            self.counts_text += data

    def handle_endtag(self, tag):
        self._in_counts = False


def test_html_renders_in_headless_chromium(run, summary, tmp_path):
    browser = _chromium()
    if browser is None:
        missing("chromium is not installed", "run scripts/install_system.sh")
    path = write_html(run, tmp_path / "report.html", summary=summary)
    target = next(i for i, t in enumerate(run.trials) if t.model == "m1" and t.arm == "with_skill"
                  and t.case_id == "c1" and t.run_index == 0)
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--dump-dom", f"{path.as_uri()}#t-{target}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Elements()
    dom.feed(proc.stdout)
    # The grid: one link per trial, each pointing at an existing detail element.
    links = [a for tag, a in dom.tags if tag == "a" and a.get("data-verdict")]
    assert len(links) == len(run.trials) == 32
    assert all(a["data-target"] in dom.by_id for a in links)
    assert dom.by_id["grid"]["_tag"] == "table"
    # The inline script ran: it counted the grid and opened the trial named in the fragment.
    assert dom.counts_text == "(error 1, fail 14, incomplete 1, pass 16)"
    detail = dom.by_id[f"t-{target}"]
    assert detail["_tag"] == "details"
    assert "open" in detail and detail.get("data-expanded") == "true"
    assert "expanded" in (detail.get("class") or "")
    other = dom.by_id[f"t-{target + 1}"]
    assert "open" not in other
    # The detail's content: prompt, answer, compile log, SASS histogram, correctness, timing.
    html_text = proc.stdout
    start = html_text.index(f'id="t-{target}"')
    end = html_text.index(f'id="t-{target + 1}"')
    section = html_text[start:end]
    for expected in ("PROMPT c1 with_skill", "ANSWER c1 with_skill #0", "nvcc -gencode arch=compute_90",
                     "SASS opcodes: rms_norm_kernel", "FFMA", "correctness: <b>pass</b>", "speedup 2.00x CPU"):
        assert expected in section, expected
    # The next trial (c1 #1, same prompt) links to this one instead of repeating the prompt.
    following = html_text[end:html_text.index(f'id="t-{target + 2}"')]
    assert f'href="#t-{target}"' in following and "PROMPT c1 with_skill" not in following
    assert "ANSWER c1 with_skill #1" in following
    assert "<svg" in html_text and 'id="chart-pass"' in html_text
    assert "http://" not in html_text.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_empty_and_odd_runs_render(tmp_path):
    empty = ReportRun(run_id="r-empty")
    s = summarize(empty)
    assert (s.arms, s.lifts, s.pareto) == ([], [], [])
    assert check_gates(s, fail_under=0.5) == ["--fail-under 0.5: no trials in the run"]
    assert check_gates(s, min_lift=0.1) == ["--min-lift 0.1: no model has both arms"]
    console = Console(record=True, width=200)
    render_terminal(empty, console, summary=s)
    assert "run r-empty" in console.export_text()
    assert "<table id=\"grid\">" in write_html(empty, tmp_path / "e.html").read_text()
    # A model name with rich markup characters is printed literally; only errors: no pass rate.
    odd = ReportRun(run_id="r-odd", trials=[
        _trial("[bold]m", "baseline", "c", 0, "error", [], error="boom [x]")])
    s = summarize(odd)
    assert s.arms[0].pass_rate.rate is None
    assert check_gates(s, fail_under=0.1) == ["[bold]m baseline: no completed trials (--fail-under 0.1)"]
    console = Console(record=True, width=300)
    render_terminal(odd, console, summary=s)
    text = console.export_text()
    assert "[bold]m" in text and "boom [x]" in text and "no completed trials" in text


def test_speedups_against_torch_compile_are_never_pooled_with_eager_ones() -> None:
    """A case timed against the reference under torch.compile (kernel.baseline = compile) gets its own
    fast_p and geomean group, named by its baseline."""
    from harness.report.summary import summarize_arm

    def timed(speedup: float, baseline: str) -> list[CheckResult]:
        checks = _pass_all(speedup)
        checks[-1] = CheckResult(name="speedup", status="pass", reason=f"{speedup}x", device="cpu",
                                 metrics={"speedup": speedup, "baseline": baseline})
        return checks

    w = "with_skill"
    trials = [_trial("m", w, "c1", 0, "pass", timed(2.0, "eager PyTorch")),
              _trial("m", w, "c1", 1, "pass", timed(3.0, "eager PyTorch")),
              _trial("m", w, "c2", 0, "pass", timed(0.5, "torch.compile"))]
    arm = summarize_arm(ReportRun(run_id="r-baselines", skill_name="s", skill_sha256="ab" * 32, skill_tokens=1,
                                  level="run", device="cpu", env={}, notes=[], trials=trials), "m", w, n_boot=200)
    assert set(arm.fast_p) == {"cpu", "cpu vs torch.compile"}
    assert arm.fast_p["cpu"]["1.0"] == 1.0 and arm.fast_p["cpu vs torch.compile"]["1.0"] == 0.0
    geo = {s.device: s for s in arm.speedup}
    assert geo["cpu"].count == 2 and geo["cpu vs torch.compile"].count == 1
    assert geo["cpu vs torch.compile"].geomean == pytest.approx(0.5)
