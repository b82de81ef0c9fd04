"""The `scan` check (harness/checks/scan.py): a static scan of a project's sources for
known tricks. Projects here are small labelled fixtures written into tmp_path, not model
answers; kernels_reference/ gives the honest projects (no scan error allowed) and the
cheat projects (which the scan catches, and which only the run check can)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.inputs.cases import Case
from harness.checks import DEPENDS
from harness.checks.base import CheckContext, GradeOptions
from harness.checks.scan import check_scan
from harness.checks.scan_source import python_events, strip_c
from harness.cli.main import main
from harness.scoring.grade import _with_dependencies, run_checks
from harness.common.paths import repo_root
from harness.common.results import CheckResult
from harness.common.check_table import CHECK_LEVEL, CHECK_ORDER
from harness.scoring.verdict import score

REFS = repo_root() / "kernels_reference"
OPS = sorted(p.name for p in REFS.iterdir() if (p / "reference.py").is_file())
BAD = sorted(p for p in (REFS / "bad").iterdir() if (p / "build.toml").is_file())
CHEATS = REFS / "cheats"

BUILD_TOML = """\
[general]
name = "fx"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu"]

[torch]
src = ["torch-ext/torch_binding.cpp"]

[kernel.fx_cpu]
backend = "cpu"
depends = ["torch"]
src = ["fx_cpu/fx.cpp"]
"""
HONEST_PY = '''"""Labelled fixture: an honest wrapper."""
import torch

from ._ops import ops


def softmax(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    ops.softmax(out, x.contiguous())
    return out
'''
HONEST_CPP = """// Labelled fixture: an honest CPU kernel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
void softmax_cpu(at::Tensor& out, const at::Tensor& x) {
  at::parallel_for(0, x.size(0), 1, [&](int64_t b, int64_t e) {});
}
"""


def _project(root: Path, *, py: str = HONEST_PY, cpp: str = HONEST_CPP, binding: str = "") -> Path:
    """A labelled fixture project (not a model answer): fx_cpu/fx.cpp and torch-ext/fx/__init__.py."""
    (root / "fx_cpu").mkdir(parents=True)
    (root / "torch-ext" / "fx").mkdir(parents=True)
    (root / "build.toml").write_text(BUILD_TOML)
    (root / "fx_cpu" / "fx.cpp").write_text(cpp)
    (root / "torch-ext" / "torch_binding.cpp").write_text(binding or '#include "registration.h"\n')
    (root / "torch-ext" / "fx" / "__init__.py").write_text(py)
    return root


def _scan(project: Path, *, op: str | None = None, case: Case | None = None) -> CheckResult:
    reference = REFS / op / "reference.py" if op and (REFS / op / "reference.py").is_file() else None
    ctx = CheckContext(case=case, text="", project_dir=project, level="text", device="cpu",
                       artifacts=project.parent / "artifacts", options=GradeOptions(reference=reference))
    return check_scan(ctx)


def _families(result: CheckResult, severity: str) -> set[str]:
    return {f.reason.split(":", 1)[0] for f in result.findings if f.severity == severity}


def test_registered_after_build_toml_at_text_level_and_run_depends_on_it():
    assert CHECK_ORDER[CHECK_ORDER.index("build_toml") + 1] == "scan"
    assert CHECK_LEVEL["scan"] == "text"
    assert DEPENDS["run"] == ("compile", "scan")
    assert _with_dependencies(["run"]) == ["build_toml", "scan", "compile", "run"]


def test_honest_fixture_has_no_finding(tmp_path):
    result = _scan(_project(tmp_path / "p"), op="softmax")
    assert result.status == "pass", result
    assert [f for f in result.findings if f.severity != "note"] == []
    assert result.metrics["files"] == 3 and result.metrics["errors"] == 0
    assert "softmax" in result.metrics["replaced_ops"]


# (family, where, source) -> an error: tricks with no use but against the grade (replacing the
# instruments grading uses in the candidate's process, hooks inside other code, another process).
ERRORS = [
    ("monkeypatch", "py", "import torch\ntorch.allclose = lambda *a, **k: True\n"),
    ("monkeypatch", "py", "import torch.testing as tt\ntt.assert_close = lambda *a, **k: None\n"),
    ("monkeypatch", "py", "import time as t\nt.perf_counter = lambda: 0.0\n"),
    ("monkeypatch", "py", "import torch\ntorch.cuda.Event = object\n"),
    ("monkeypatch", "py", "import torch\nsetattr(torch.cuda, 'synchronize', lambda: None)\n"),
    ("monkeypatch", "py", "import torch\ndel torch.cuda.synchronize\n"),
    ("monkeypatch", "py", "import torch\ntorch.Tensor.clone = lambda self: self\n"),
    ("monkeypatch", "py", "import torch\nlib = torch.library.Library('aten', 'IMPL')\n"),
    ("hook", "py", "import sys\ndef later(frame, event, arg):\n    pass\nsys.setprofile(later)\n"),
    ("hook", "py", "import gc\ngc.callbacks.append(lambda phase, info: None)\n"),
    ("hook", "py", "import sys\nsys.addaudithook(lambda event, args: None)\n"),
    ("reads_data", "py", "import os\nmem = '/proc/' + str(os.getppid()) + '/mem'\n"),
    ("monkeypatch", "cpp", 'extern "C" cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {\n'
                           "  *ms = 0.001f;\n  return cudaSuccess;\n}\n"),
    ("monkeypatch", "cpp", "TORCH_LIBRARY_IMPL(aten, CPU, m) {\n  m.impl(\"softmax\", &mine);\n}\n"),
    ("monkeypatch", "cpp", 'void f() { pybind11::module_::import("torch").attr("allclose") = g; }\n'),
    ("frame_inspection", "cpp", "void f() { PyEval_SetProfile(later, nullptr); }\n"),
    ("other_process", "cpp", "void f(pid_t p) { process_vm_readv(p, 0, 0, 0, 0, 0); }\n"),
    ("reads_data", "cpp", 'void f(int pid) { char p[64]; snprintf(p, 64, "/proc/%d/mem", pid); }\n'),
]

# (family, where, source) -> a warning: things honest kernel packages do (each one seen in
# kernels-community's projects): the trust boundary, not the scan, keeps the judge out of reach.
HONEST_PACKAGE_HABITS = [
    ("monkeypatch", "py", "import torch\ntorch.distributed.all_gather_into_tensor = torch.distributed._all_gather_base\n"),
    ("monkeypatch", "py", "import triton\ntriton.autotune = lambda *a, **k: (lambda f: f)\n"),
    ("monkeypatch", "py", "import sys, types\nsys.modules[__name__ + '.types'] = types\n"),
    ("frame_inspection", "py", "import sys\ndef peek():\n    return sys._getframe(2).f_locals\n"),
    ("frame_inspection", "py", "import inspect\nframes = inspect.stack()\n"),
    ("frame_inspection", "py", "import gc\nobjs = gc.get_objects()\n"),
    ("reads_data", "py", "def f():\n    return open('/tmp/kg/cache.json', 'rb').read()\n"),
    ("reads_data", "py", "import os\nhome = os.environ['HOME']\n"),
    ("reads_data", "py", "from os import environ\nx = environ.get('MY_KERNEL_BACKEND')\n"),
    ("reads_data", "py", "from pathlib import Path\nx = (Path('.') / 'tuned.json').read_text()\n"),
    ("reads_data", "py", "import glob\nfiles = glob.glob('/tmp/cache/*.cubin')\n"),
    ("reads_data", "py", "import torch\nsaved = torch.load('tuned.pt')\n"),
    ("other_process", "py", "import subprocess\nsubprocess.check_output(['nvcc', '--version'])\n"),
    ("hidden_code", "py", "exec('def f(x):\\n    return x')\n"),
    ("monkeypatch", "cpp", 'void f(pybind11::module_ m) { m.attr("gemm_nt") = m.attr("fp8_gemm_nt"); }\n'),
    ("frame_inspection", "cpp", 'void f() { PyRun_SimpleString("import math"); }\n'),
    ("other_process", "cpp", 'void f() { auto p = popen("which nvcc", "r"); }\n'),
    ("reads_data", "cpp", 'void f() { std::ifstream f("/proc/cpuinfo"); }\n'),
]


def _files(where: str, source: str) -> dict[str, str]:
    """The fixture's package (py) or kernel (cpp) with `source` appended to the honest one."""
    return {"cpp": HONEST_CPP + source} if where == "cpp" else {"py": HONEST_PY + source}


@pytest.mark.parametrize(("family", "where", "source"), ERRORS,
                         ids=[f"{f}-{w}-{i}" for i, (f, w, _) in enumerate(ERRORS)])
def test_tricks_are_errors(tmp_path, family, where, source):
    result = _scan(_project(tmp_path / "p", **_files(where, source)), op="softmax")
    assert result.status == "fail", result
    assert family in _families(result, "error"), result.findings
    first = next(f for f in result.findings if f.severity == "error")
    # file:line a person can open, and the matched source line quoted
    assert first.key.startswith("fx_cpu/fx.cpp:" if where == "cpp" else "torch-ext/fx/__init__.py:")
    assert "`" in first.reason


# Calls to the op under test (softmax here), whatever the spelling.
TORCH_OP_PY = [
    "import torch.nn.functional as F\ndef g(x):\n    return F.softmax(x, -1)\n",
    "import torch\ndef g(x):\n    return torch.softmax(x, dim=-1)\n",
    "def g(x):\n    return x.softmax(-1)\n",
    "import torch\ndef g(x):\n    return torch.ops.aten._softmax(x, -1, False)\n",
    "from torch.nn.functional import softmax as sm\ndef g(x):\n    return sm(x, -1)\n",
    "import torch.nn.functional as F\ndef g(x):\n    return getattr(F, 'soft' + 'max')(x) if x is None else getattr(F, 'softmax')(x)\n",
    "import torch\nop = torch._C._dispatch_find_schema_or_throw('aten::softmax', 'int')\n",
]
TORCH_OP_CPP = [
    "at::Tensor g(const at::Tensor& x) { return at::softmax(x, -1); }\n",
    "at::Tensor g(const at::Tensor& x) { return x.softmax(-1); }\n",
    "at::Tensor g(const at::Tensor& x) { return at::_ops::_softmax::call(x, -1, false); }\n",
    'auto op = c10::Dispatcher::singleton().findSchemaOrThrow("aten::softmax", "int");\n',
    "at::Tensor g(const at::Tensor& x) { return torch::nn::functional::softmax(x, -1); }\n",
]


@pytest.mark.parametrize("source", TORCH_OP_PY)
def test_python_calling_the_replaced_op_is_an_error(tmp_path, source):
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + source), op="softmax")
    assert result.status == "fail" and "torch_op" in _families(result, "error"), result.findings
    assert "calls the PyTorch op it replaces" in result.reason


@pytest.mark.parametrize("source", TORCH_OP_CPP)
def test_cpp_calling_the_replaced_op_is_an_error(tmp_path, source):
    result = _scan(_project(tmp_path / "p", cpp=HONEST_CPP + source), op="softmax")
    assert result.status == "fail" and "torch_op" in _families(result, "error"), result.findings


def test_replaced_op_comes_from_the_case_and_its_aliases(tmp_path):
    """The case's op and API name the op; kernels_reference aliases add what it is built from."""
    project = _project(tmp_path / "p", py=HONEST_PY + "def g(a, b):\n    return a @ b\n")
    case = Case.model_validate({"input": "x", "kernel": {"op": "matmul", "api": "matmul(a, b)"}})
    result = _scan(project, case=case)
    assert result.status == "fail" and "torch_op" in _families(result, "error")
    assert result.metrics["replaced_from"].endswith("matmul/reference.py")
    # The same source in a softmax case is only PyTorch compute: a warning.
    soft = Case.model_validate({"input": "x", "kernel": {"op": "softmax", "api": "softmax(x)"}})
    other = _scan(project, case=soft)
    assert other.status == "pass" and "pytorch_compute" in _families(other, "warning")
    # A case whose op has no kernels_reference/ folder still names the op through its api.
    odd = Case.model_validate({"input": "x", "kernel": {"op": "no_such_op", "api": "softmax(x)"}})
    assert _scan(_project(tmp_path / "q", py=HONEST_PY + "def g(x):\n    return x.softmax(-1)\n"),
                 case=odd).status == "fail"


def test_without_a_reference_the_replaced_op_rule_is_skipped_with_a_note(tmp_path):
    project = _project(tmp_path / "p", cpp=HONEST_CPP + "at::Tensor g(const at::Tensor& x) { return at::softmax(x, -1); }\n")
    result = _scan(project)
    assert result.status == "pass"
    assert any(f.severity == "note" and f.key == "torch_op" for f in result.findings)
    assert "pytorch_compute" in _families(result, "warning")  # still reported, as a warning


# (family, where, source) -> a warning only: these have honest uses.
WARNINGS = [
    ("stream", "cpp", "void f() { cudaStream_t s; cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking); }\n"),
    ("stream", "cpp", "void f() { auto s = c10::cuda::getStreamFromPool(); }\n"),
    ("cache", "cpp", "static at::Tensor cached;\n"),
    ("cache", "cpp", "void f() { static std::unordered_map<int64_t, at::Tensor> memo; }\n"),
    ("cache", "cpp", "__device__ float g_scratch[1024];\n"),
    ("cache", "cpp", "bool same(const at::Tensor& a, void* p) { return a.data_ptr() == p; }\n"),
    ("pytorch_compute", "cpp", "at::Tensor g(const at::Tensor& x) { return at::matmul(x, x); }\n"),
    ("thread", "cpp", "#include <thread>\nvoid f() { std::thread t([] {}); t.join(); }\n"),
    ("cache", "py", "import functools\n@functools.lru_cache(maxsize=None)\ndef h(n):\n    return n\n"),
    ("cache", "py", "_memo = {}\n"),
    ("cache", "py", "def h(x):\n    return x.data_ptr()\n"),
    ("stream", "py", "import torch\ns = torch.cuda.Stream()\n"),
    ("pytorch_compute", "py", "import torch\ndef h(x):\n    return torch.exp(x).sum(-1)\n"),
    ("global_setting", "py", "import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n"),
]


@pytest.mark.parametrize(("family", "where", "source"), WARNINGS + HONEST_PACKAGE_HABITS,
                         ids=[f"{f}-{w}-{i}" for i, (f, w, _) in enumerate(WARNINGS + HONEST_PACKAGE_HABITS)])
def test_suspicious_but_legitimate_things_are_warnings(tmp_path, family, where, source):
    result = _scan(_project(tmp_path / "p", **_files(where, source)), op="softmax")
    assert result.status == "pass", result
    assert family in _families(result, "warning"), result.findings
    assert result.metrics["warnings"] >= 1 and "warning" in result.reason


def test_package_that_never_uses_its_ops_is_warned(tmp_path):
    py = '"""Labelled fixture."""\nimport torch\n\ndef softmax(x):\n    return torch.empty_like(x)\n'
    result = _scan(_project(tmp_path / "p", py=py), op="softmax")
    assert result.status == "pass"
    assert any(f.severity == "warning" and f.reason.startswith("no_own_code") for f in result.findings)


def test_comments_strings_and_docstrings_are_not_matched(tmp_path):
    cpp = HONEST_CPP + """
// never call at::softmax or torch.allclose; no cudaStreamCreate( here
/* static at::Tensor cache;  TORCH_LIBRARY_IMPL(aten, CPU, m)
   std::system("x") */
const char* help = "x.softmax(-1) and at::matmul( and getStreamFromPool( are banned";
const char c = '"'; const int64_t big = 1'000'000;  // a quote char and digit separators
at::Tensor after(const at::Tensor& x) { return x; }  // still code after the quote
"""
    py = HONEST_PY + '''
# torch.allclose = lambda *a: True   (a comment)
def h():
    """torch.allclose = x; os.environ; sys._getframe(); open('f'); F.softmax(x)"""
    return "torch.allclose = lambda: True; glob.glob('*'); x.softmax(-1)"
'''
    result = _scan(_project(tmp_path / "p", py=py, cpp=cpp), op="softmax")
    assert result.status == "pass", result
    assert [f for f in result.findings if f.severity != "note"] == [], result.findings


def test_strip_c_keeps_lines_and_blanks_comments_and_strings():
    src = 'int a; // c1\n/* c2\n c3 */ const char* s = "hi // no";\nR"x(raw " // )x";\n'
    code, full = strip_c(src)
    assert len(code) == len(src) and code.count("\n") == src.count("\n")
    assert "c1" not in code and "c3" not in code and "hi" not in code and "raw" not in code
    assert '"hi // no"' in full and "c2" not in full
    assert 'R"x(raw " // )x"' in full


def test_python_events_resolve_aliases_and_skip_docstrings():
    events = [e for _, e in python_events('"""doc torch.load"""\nimport torch.nn.functional as F\n'
                                          'from ._ops import ops\nF.gelu(x)\nops.gelu(x)\n')]
    assert "call torch.nn.functional.gelu" in events and "call ._ops.ops.gelu" in events
    assert not any("torch.load" in e for e in events)


def test_unparseable_python_is_a_warning_not_a_crash(tmp_path):
    result = _scan(_project(tmp_path / "p", py="def broken(:\n"), op="softmax")
    assert result.status == "pass"
    assert any(f.severity == "warning" and "not valid Python" in f.reason for f in result.findings)


def test_included_project_headers_are_scanned(tmp_path):
    project = _project(tmp_path / "p", cpp='#include "helpers.h"\n' + HONEST_CPP)
    (project / "fx_cpu" / "helpers.h").write_text("inline at::Tensor g(const at::Tensor& x) { return at::softmax(x, 0); }\n")
    result = _scan(project, op="softmax")
    assert result.status == "fail" and any(f.key.startswith("fx_cpu/helpers.h:1") for f in result.findings)


@pytest.mark.parametrize("op", OPS)
def test_reference_projects_have_no_scan_error(op):
    result = _scan(REFS / op, op=op)
    assert result.status == "pass", result.findings
    assert result.metrics["errors"] == 0
    assert op in result.metrics["replaced_ops"]  # the op rule was applied, not skipped
    assert result.metrics["files"] >= 4


def test_there_are_eight_reference_projects():
    assert len(OPS) == 8


@pytest.mark.parametrize("project", BAD, ids=[p.name for p in BAD])
def test_bad_projects_have_no_scan_error(project):
    result = _scan(project, op="softmax")
    assert result.status == "pass", result.findings


#: The 9 CPU cheat projects: what the static scan sees. The run check (harness/execute/judge.py)
#: catches every one of them; the scan adds a second, earlier line for some.
#: "error": caught statically (fails scan, so run is blocked);
#: "warning": visible statically only as a warning (the run check fails it);
#: None: not visible in the sources at all (only running the code shows it).
CPU_CHEATS: dict[str, tuple[str | None, str | None]] = {
    "monkeypatches_checker_or_timer": ("error", "monkeypatch"),
    "reads_reference_output": ("warning", "reads_data"),
    "calls_torch_op": ("error", "torch_op"),
    "caches_results": ("warning", "cache"),
    "computes_in_pytorch": ("warning", "pytorch_compute"),
    "mutates_inputs": (None, None),
    "partial_work": (None, None),
    "returns_constant": (None, None),
    "returns_input": (None, None),
}


def test_all_cpu_cheat_projects_are_classified():
    cpu = {p.name for p in CHEATS.iterdir()
           if (p / "build.toml").is_file() and '"cpu"' in (p / "build.toml").read_text()}
    assert set(CPU_CHEATS) <= cpu and len(CPU_CHEATS) == 9


@pytest.mark.parametrize("name", sorted(CPU_CHEATS))
def test_cheat_projects_static_verdicts(name):
    severity, family = CPU_CHEATS[name]
    result = _scan(CHEATS / name, op="rmsnorm")  # every cheat project imitates kernels_reference/rmsnorm
    errors, warnings = _families(result, "error"), _families(result, "warning")
    if severity == "error":
        assert result.status == "fail" and family in errors, result.findings
    elif severity == "warning":
        assert result.status == "pass" and not errors and family in warnings, result.findings
    else:
        assert result.status == "pass" and not errors, result.findings


def test_calls_torch_op_cheat_needs_the_reference_to_be_caught():
    """Without a reference, the op is unknown: the bare project passes with a note."""
    result = _scan(CHEATS / "calls_torch_op")
    assert result.status == "pass" and any(f.key == "torch_op" for f in result.findings)


def test_check_cli_reports_scan_at_text_level(capsys):
    code = main(["check", str(REFS / "rmsnorm"), "--level", "text", "--json"])
    data = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in data["results"]}
    assert code == 0 and by["scan"]["status"] == "pass" and by["scan"]["metrics"]["errors"] == 0
    assert [r["name"] for r in data["results"]][:2] == ["build_toml", "scan"]
    code = main(["check", str(CHEATS / "monkeypatches_checker_or_timer"), "--level", "text", "--json"])
    data = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in data["results"]}
    assert code == 1 and by["scan"]["status"] == "fail"
    assert "torch.allclose" in json.dumps(by["scan"]["findings"])
    assert by["scan"]["reason"].startswith("torch-ext/cheat_monkeypatches_checker_or_timer/__init__.py:12")


def test_failed_scan_blocks_run_and_fails_the_trial(tmp_path):
    project = tmp_path / "answer"
    shutil.copytree(CHEATS / "monkeypatches_checker_or_timer", project)
    case = Case.model_validate({"input": "x", "kernel": {"op": "rmsnorm", "api": "rms_norm(x, w, eps)",
                                                          "checks": ["compile", "run"]}})
    ctx = CheckContext(case=case, text="", project_dir=project, level="run", device="cpu",
                       artifacts=tmp_path / "artifacts", options=GradeOptions())
    # compile is left out: it would build the extension, and scan alone must block run.
    results = run_checks(ctx, ["scan", "run"])
    by = {r.name: r for r in results}
    assert by["scan"].status == "fail"
    assert by["run"].status == "skip" and by["run"].reason == "blocked by scan"
    results.append(CheckResult(name="compile", status="pass"))
    assert case.required_checks == ["scan", "compile", "run"]  # every kernel case is scanned
    verdict = score(results, case.required_checks, "run")
    assert verdict.verdict == "fail" and verdict.reason.startswith("scan: torch-ext/")
    assert (verdict.assertions_passed, verdict.assertions_total) == (1, 3)


# --- Package data (issue 25): reading one's own package folder is a warning ------------------

OWN_DATA = [
    "import json\nfrom pathlib import Path\n\ndef f():\n    p = Path(__file__).parent / 'data.json'\n"
    "    with open(p) as fh:\n        return json.load(fh)\n",
    "import os\nHERE = os.path.dirname(os.path.abspath(__file__))\nCFG = os.path.join(HERE, 'configs')\n"
    "def f(name):\n    return open(os.path.join(CFG, name + '.json')).read()\n",
    "from pathlib import Path\n_DIR = Path(__file__).resolve().parent / 'configs'\n"
    "def f(n):\n    return [p.read_text() for p in _DIR.glob('*.json')]\n",
    "import importlib.resources\ndef f():\n    return importlib.resources.files(__package__).joinpath('t.json').read_text()\n",
    "import json\nfrom pathlib import Path\nD = Path(__file__).parent\ndef save(x, d=None):\n    d = D\n"
    "    with open(d / 'tuned.json', 'w') as fh:\n        json.dump(x, fh)\n",
]
ESCAPING = [
    "from pathlib import Path\nx = (Path(__file__).parent / '../../reference/out.pt').read_bytes()\n",
    "from pathlib import Path\nx = (Path(__file__).parent.parent.parent / 'ref.json').read_text()\n",
    "from pathlib import Path\nx = (Path(__file__).parents[3] / 'ref.json').read_text()\n",
    "import os\nx = open(os.path.join(os.path.dirname(__file__), '/etc/kg/ref.json')).read()\n",
    "from pathlib import Path\nBASE = Path(__file__).parent.parent\nx = (BASE.parent / 'expected.json').read_text()\n",
    "import json\ndef f(path):\n    with open(path) as fh:\n        return json.load(fh)\n",
]


@pytest.mark.parametrize("source", OWN_DATA)
def test_reading_its_own_package_data_is_a_warning(tmp_path, source):
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + "\n" + source))
    assert result.status == "pass", result.reason
    assert any(f.severity == "warning" and "own package folder" in f.reason for f in result.findings)


@pytest.mark.parametrize("source", ESCAPING)
def test_reading_outside_its_package_folder_is_a_warning_that_says_so(tmp_path, source):
    """Not package data, and said so; still only a warning: the judge's files are out of reach."""
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + "\n" + source))
    assert result.status == "pass", result.findings
    reads = [f for f in result.findings if f.reason.startswith("reads_data")]
    assert reads and all(f.severity == "warning" for f in reads)
    assert not any("own package folder" in f.reason and "outside" not in f.reason for f in reads), reads


def test_a_subpackage_may_reach_the_package_root_but_not_above(tmp_path):
    project = _project(tmp_path / "p")
    sub = project / "torch-ext" / "fx" / "layers"
    sub.mkdir()
    (sub / "__init__.py").write_text("from pathlib import Path\nx = (Path(__file__).parent.parent / 'd.json').read_text()\n")
    assert _scan(project).status == "pass"
    (sub / "__init__.py").write_text("from pathlib import Path\nx = (Path(__file__).parent.parent.parent / 'd').read_text()\n")
    above = _scan(project)
    assert any("outside its own package folder" in f.reason for f in above.findings), above.findings


def test_math_functions_are_not_tensor_methods(tmp_path):
    source = "import math\nimport numpy as np\n\ndef pick(m, tuned):\n    a = math.log(m)\n" \
             "    return min(tuned, key=lambda t: abs(math.exp(a) - t)) + np.sum([1])\n"
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + "\n" + source))
    assert not any("pytorch_compute" in f.reason for f in result.findings), result.findings
    tensor = _scan(_project(tmp_path / "q", py=HONEST_PY + "\ndef g(x):\n    return x.log()\n"))
    assert any("pytorch_compute" in f.reason for f in tensor.findings)


MODULE_CLASS_PY = [
    "import torch\nclass Holder(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.lin = torch.nn.Linear(4, 4)\n",
    "from torch import nn\nHOLDER = nn.Linear(4, 4)\n",
    "from torch.nn import Linear\ndef holder(n):\n    return isinstance(n, Linear)\n",
]


@pytest.mark.parametrize("source", MODULE_CLASS_PY)
def test_a_module_class_is_not_the_replaced_op(tmp_path, source):
    """KernelBench answers keep `nn.Linear` to hold the weights they pass to their own kernel:
    the module class is not the op `linear` (its functional form and aten op still are)."""
    case = Case.model_validate({"input": "x", "kernel": {"op": "linear", "api": "linear(x, weight, bias)"}})
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + source), case=case)
    assert "torch_op" not in _families(result, "error"), result.findings
    for cheat in ("import torch\ndef g(x, w):\n    return torch.nn.functional.linear(x, w)\n",
                  "import torch\ndef g(x, w):\n    return torch.ops.aten.linear(x, w)\n"):
        caught = _scan(_project(tmp_path / f"c{len(cheat)}", py=HONEST_PY + source + cheat), case=case)
        assert caught.status == "fail" and "torch_op" in _families(caught, "error"), caught.findings


def test_a_stateless_module_of_the_replaced_op_is_a_warning(tmp_path):
    """`torch.nn.Softmax(dim=-1)(x)` in a softmax answer is not an error for the static scan (the
    class alone cannot tell holding weights from computing) but it is not silent either."""
    case = Case.model_validate({"input": "x", "kernel": {"op": "softmax", "api": "softmax(x)"}})
    source = "import torch\ndef g(x):\n    return torch.nn.Softmax(dim=-1)(x)\n"
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + source), case=case)
    assert result.status == "pass"
    assert any(f.severity == "warning" and "module class of the op it replaces" in f.reason
               for f in result.findings), result.findings


def test_the_case_s_own_reference_names_the_replaced_op(tmp_path):
    """A case with its own reference file (KernelSpec.reference, as import-kernelbench writes)
    gives the scan its TORCH_OPS even when the check is called without options.reference."""
    ref = tmp_path / "kb_ref.py"
    ref.write_text('API = "kb_gelu(x)"\nTORCH_OPS = ["aten::gelu"]\n')
    case = Case.model_validate({"input": "x", "kernel": {"op": "kb_gelu", "api": "kb_gelu(x)",
                                                         "reference": str(ref)}})
    source = "import torch\ndef g(x):\n    return torch.nn.functional.gelu(x)\n"
    result = _scan(_project(tmp_path / "p", py=HONEST_PY + source), case=case)
    assert result.metrics["replaced_from"] == str(ref)
    assert result.status == "fail" and "torch_op" in _families(result, "error"), result.findings
