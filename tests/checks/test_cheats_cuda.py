"""The CUDA-only cheat categories of REFERENCE.md §7 (issue 6 item 4): work on another
stream, launching nothing at all, deferring work across calls.

Their projects (kernels_reference/cheats/cuda_*) can only be caught on a GPU; here they are
compiled (and, with a CUDA build of torch in .venv-cuda, linked and loaded), and the
decisions that catch them are tested on the event dicts and tensors the runner child
records. The deferral rule is device-generic, so it is also run end to end on CPU with a
labelled fixture project. The `gpu` tests run each project with `--level run --device cuda`.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harness.inputs.cases import Case, KernelSpec
from harness.checks.base import CheckContext, GradeOptions
from harness.checks.run import check_run
from harness.common.paths import repo_root
from sandbox.programs.devices.cuda import CudaDevice, is_marker, judge_evidence, stream_problem
from sandbox.programs.runner_child import _marker, _stream_of
from tests.cuda_helpers import needs_nvcc
from tests.expected import read_expected
from tests.build.test_load_probe import _check_with_cuda_torch, cuda_py  # noqa: F401 - cuda_py is a fixture

CHEATS = repo_root() / "kernels_reference" / "cheats"
CUDA_CHEATS = sorted(p.name for p in CHEATS.iterdir() if p.name.startswith("cuda_"))
#: Issue 6 item 4: the categories of REFERENCE.md §7 that only show on a GPU.
REQUIRED = {"cuda_other_stream", "cuda_launches_nothing", "cuda_defers_work"}
NS = "_cheat_abc123"
#: What ATen's spin_kernel (torch.cuda._sleep, the runner's current-stream marker) is called in a profile.
MARKER = "at::cuda::(anonymous namespace)::spin_kernel(long)"
OWN = "void side_stream_rmsnorm::rms_norm_kernel<float>(float*, float const*, float const*, long, float)"
FILL = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, std::array<char*, 1ul> >"


def expected(name: str) -> tuple[str, str]:
    """(check, reason substring) from EXPECTED.txt: `check: NAME`, then the substring."""
    spec = read_expected(CHEATS / name)
    assert spec.lines == 2 and spec.check is not None, f"{name}/EXPECTED.txt: bad format {spec!r}"
    return spec.check, spec.reason


def test_every_cuda_category_has_a_project() -> None:
    assert set(CUDA_CHEATS) == REQUIRED
    for name in CUDA_CHEATS:
        toml = (CHEATS / name / "build.toml").read_text()
        assert 'backend = "cuda"' in toml and 'backend = "cpu"' not in toml, name  # not picked up as a CPU cheat
        assert expected(name)[0] == "run"
        # scripts/validate_gpu.sh takes the reference op from the first kernels_reference/ path in the README.
        readme = (CHEATS / name / "README.md").read_text()
        assert "kernels_reference/rmsnorm" in readme.split("kernels_reference/cheats")[0], name


def test_each_cuda_reason_is_its_own() -> None:
    """No CUDA cheat's reason is contained in another cheat's (CPU ones included), either way."""
    reasons = {p.name: read_expected(p).reason for p in CHEATS.iterdir() if (p / "EXPECTED.txt").is_file()}
    for a in CUDA_CHEATS:
        for b, text_b in reasons.items():
            assert a == b or (reasons[a] not in text_b and text_b not in reasons[a]), (a, b)


# --------------------------------------------------------------- (a) another stream


def _call(*gpu: tuple[str, int | None]) -> list[dict]:
    """A traced call: the extension's op dispatched, markers and kernels on the GPU."""
    return [{"name": f"{NS}::rms_norm", "device": "cpu", "stream": None}] + \
        [{"name": n, "device": "cuda", "stream": s} for n, s in gpu]


def test_kernel_on_the_current_stream_is_evidence() -> None:
    events = _call((MARKER, 7), (FILL, 7), (OWN, 7), (MARKER, 7))
    assert stream_problem(events) is None
    ok, detail, _ = judge_evidence(events, NS)
    assert ok and detail.startswith("launched void side_stream_rmsnorm::"), detail


def test_kernel_on_another_stream_fails_with_the_expected_reason() -> None:
    events = _call((MARKER, 7), (FILL, 7), (OWN, 13), (MARKER, 7))
    ok, detail, kind = judge_evidence(events, NS)
    assert not ok and kind == "other_stream"
    assert expected("cuda_other_stream")[1] in detail
    assert "another stream (13), not the current stream (7)" in detail and "side_stream_rmsnorm" in detail
    assert "timers on the current stream miss the work" in detail
    assert CudaDevice().evidence(events, NS) == (ok, detail, kind)  # the device strategy uses the same decision


def test_only_the_candidates_kernels_are_held_to_the_current_stream() -> None:
    # PyTorch's own kernels or copies elsewhere (e.g. a non-blocking copy) are not the candidate's work.
    assert stream_problem(_call((MARKER, 7), (FILL, 21), ("Memcpy DtoD (Device -> Device)", 21), (OWN, 7))) is None
    # One own kernel on the right stream does not excuse another on a side stream.
    two = _call((MARKER, 7), (OWN, 7), ("void my_ns::second_pass(float*)", 14))
    assert "another stream (14)" in stream_problem(two) and "second_pass" in stream_problem(two)


def test_without_a_marker_or_stream_ids_nothing_is_claimed() -> None:
    """No marker in the profile (or no stream ids): the stream cannot be judged, so no verdict on it."""
    assert stream_problem(_call((OWN, 13))) is None
    assert stream_problem(_call((MARKER, None), (OWN, 13))) is None
    assert stream_problem(_call((MARKER, 7), (OWN, None))) is None
    assert judge_evidence(_call((OWN, 13)), NS)[0]


def test_marker_name_is_atens_spin_kernel() -> None:
    assert is_marker(MARKER) and is_marker("void at::cuda::spin_kernel(long)")
    # A candidate kernel that borrows the name outside at::cuda is not a marker.
    assert not is_marker("void (anonymous namespace)::spin_kernel(long)")
    assert callable(torch.cuda._sleep)  # what CudaDevice.mark_current_stream calls


def test_stream_id_comes_from_the_profiler_event() -> None:
    """_stream_of reads FunctionEvent.event_metadata.stream, else device_resource_id."""
    meta = SimpleNamespace(stream=13)
    assert _stream_of(SimpleNamespace(event_metadata=meta, device_resource_id=99)) == 13
    assert _stream_of(SimpleNamespace(event_metadata=None, device_resource_id=7)) == 7
    assert _stream_of(SimpleNamespace(event_metadata=SimpleNamespace(stream=None), device_resource_id=7)) == 7
    assert _stream_of(SimpleNamespace()) is None
    # ... which are the names the installed torch's profiler gives them.
    from torch.autograd.profiler_util import EventMetadata, FunctionEvent

    params = inspect.signature(FunctionEvent.__init__).parameters
    assert "device_resource_id" in params and "extra_meta" in params
    assert "stream" in EventMetadata._fields


# --------------------------------------------------------------- (b) launching nothing


def test_no_op_of_the_extension_dispatched() -> None:
    events = [{"name": "aten::empty_like", "device": "cpu"}, {"name": FILL, "device": "cuda", "stream": 7}]
    ok, detail, _ = judge_evidence(events, NS)
    assert not ok and f"no op of the extension ({NS}::*) was dispatched" in detail
    assert expected("cuda_launches_nothing")[1] not in detail  # a separate reason from (b)'s


def test_op_ran_but_the_gpu_ran_only_copies_and_pytorch_kernels() -> None:
    events = _call((MARKER, 7), (FILL, 7), ("Memcpy DtoH (Device -> Pageable)", 7),
                   ("Memcpy HtoD (Pageable -> Device)", 7), (MARKER, 7))
    ok, detail, _ = judge_evidence(events, NS)
    assert not ok and expected("cuda_launches_nothing")[1] in detail
    assert f"({NS}::rms_norm) ran" in detail
    assert "the GPU ran only 1 PyTorch kernel(s), Memcpy DtoH (Device -> Pageable), Memcpy HtoD" in detail
    assert "spin_kernel" not in detail  # the runner's own marker is not reported as the candidate's


def test_op_ran_and_nothing_ran_on_the_gpu() -> None:
    ok, detail, _ = judge_evidence(_call((MARKER, 7), (MARKER, 7)), NS)
    assert not ok and detail.endswith("launched no kernel of its own (nothing ran on the GPU)")


# --------------------------------------------------------------- (c) deferred work


# The deferral rule is the parent's now (harness/execute/runner.py): it reads every output again
# from the stopped child after the last call and compares the bits with what it read at return.
# The CPU fixture below runs that path end to end.


def test_a_failing_marker_is_not_the_candidates_failure() -> None:
    class Broken:
        def mark_current_stream(self) -> None:
            raise RuntimeError("no spin kernel")

    assert _marker(SimpleNamespace()) is None  # CPU: no marker
    mark = _marker(Broken())
    assert mark is not None and mark() is None  # logged, not raised


#: Labelled fixture, not a model answer: a CPU RMSNorm that queues calls and computes them
#: two at a time, like cuda_defers_work, to run the deferral rule end to end without a GPU.
DEFERRING_CPP = r"""
#include <ATen/ATen.h>
#include <cmath>
#include <vector>

namespace {
struct Pending { at::Tensor out, x, w; double eps; };
std::vector<Pending>& queue() { static auto* q = new std::vector<Pending>(); return *q; }
void compute(const Pending& p) {
  const int64_t d = p.x.size(-1), n = p.x.numel() / d;
  const float* x = p.x.data_ptr<float>();
  const float* w = p.w.data_ptr<float>();
  float* o = p.out.data_ptr<float>();
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += double(x[r * d + i]) * x[r * d + i];
    const float k = float(1.0 / std::sqrt(s / d + p.eps));
    for (int64_t i = 0; i < d; ++i) o[r * d + i] = x[r * d + i] * k * w[i];
  }
}
}  // namespace

void rms_norm_cpu(at::Tensor& out, const at::Tensor& x, const at::Tensor& w, double eps) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous(), "float32, contiguous");
  queue().push_back({out, x, w, eps});
  if (queue().size() < 2) return;
  for (const auto& p : queue()) compute(p);
  queue().clear();
}
"""


def _deferring_cpu_project(root: Path) -> Path:
    # Binding and package as in the CPU cheat projects; only the kernel differs.
    shutil.copytree(CHEATS / "caches_results" / "torch-ext", root / "torch-ext")
    (root / "torch-ext" / "cheat_caches_results").rename(root / "torch-ext" / "fixture_defers_cpu")
    (root / "rmsnorm_cpu").mkdir()
    (root / "rmsnorm_cpu" / "rmsnorm.cpp").write_text(DEFERRING_CPP)
    (root / "build.toml").write_text(
        (CHEATS / "caches_results" / "build.toml").read_text().replace("cheat-caches-results", "fixture-defers-cpu"))
    return root


@pytest.mark.slow
def test_deferred_work_fails_run_on_cpu_with_the_expected_reason(tmp_path: Path) -> None:
    """The same runner path as on CUDA: calls 0 and 2 return unwritten outputs that calls 1
    and 3 fill in; call 4 by whatever call comes next (here the first watched replay)."""
    project = _deferring_cpu_project(tmp_path / "defers")
    case = Case(input="fixture", kernel=KernelSpec(
        op="rmsnorm", api="rms_norm(input, weight, eps)", shapes=[[7, 1000], [3, 4095], [2, 3, 64]],
        dtypes=["float32"], checks=["run"]))
    ctx = CheckContext(case=case, text="", project_dir=project, level="run", device="cpu",
                       artifacts=tmp_path / "art", options=GradeOptions(timed_iters=20))
    result = check_run(ctx)
    assert result.status == "fail"
    assert result.reason.startswith("deferred: call 0 (7, 1000) float32: output 0 changed after"), result.reason
    assert expected("cuda_defers_work")[1] in result.reason
    calls_deferred = json.loads(Path(result.log_path).read_text())["calls"]
    deferred = sorted(c["id"] for c in calls_deferred if any(k == "deferred" for k, _ in c.get("problems", [])))
    # Calls 0 and 2 were filled in by calls 1 and 3; call 4 by the first watched replay after it.
    assert deferred == [0, 2, 4], deferred
    calls = {c["id"]: c for c in json.loads(Path(result.log_path).read_text())["calls"]}
    assert calls[1]["status"] == "ok" and calls[3]["status"] == "ok"  # the calls that did the work pass


# --------------------------------------------------------------- the projects build


def _results(data: dict) -> dict[str, dict]:
    return {r["name"]: r for r in data["results"]}


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_cuda_cheat_compiles(name: str, capsys) -> None:
    """build.toml is valid and nvcc compiles the project for sm_90 (a cheat is not a build error)."""
    from harness.cli.main import main

    assert main(["check", str(CHEATS / name), "--level", "compile", "--device", "cuda", "--json"]) == 0
    by = _results(json.loads(capsys.readouterr().out))
    assert by["build_toml"]["status"] == "pass" and by["compile"]["status"] == "pass", by
    assert by["sass"]["status"] == "pass", by["sass"]  # every cheat has a real kernel in its SASS


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_cuda_cheat_links_and_loads_with_cuda_torch(cuda_py: Path, name: str, tmp_path: Path) -> None:  # noqa: F811
    code, data = _check_with_cuda_torch(cuda_py, CHEATS / name, tmp_path)
    compile_ = _results(data)["compile"]
    assert code == 0 and compile_["status"] == "pass", compile_
    assert compile_["metrics"]["loaded"] is True and "linked and loaded without a GPU" in compile_["reason"]
    load = next(f for f in compile_["findings"] if f["key"] == "load")
    assert "rms_norm [CUDA]" in load["reason"], load


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_cuda_cheat_is_caught_on_the_gpu(name: str, capsys, monkeypatch, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CUDA cheats are only compiled and loaded here, not run")
    from harness.cli.main import main

    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))
    check, reason = expected(name)
    code = main(["check", str(CHEATS / name), "--level", "run", "--device", "cuda", "--op", "rmsnorm", "--json"])
    by = _results(json.loads(capsys.readouterr().out))
    assert code == 1 and by[check]["status"] == "fail", by
    assert reason in by[check]["reason"], (reason, by[check]["reason"], by[check]["findings"])
