"""Escape attempts against the local and bwrap backends, run for real.

Each test looks up the backend's claim in sandbox.backends.capabilities: where it
claims containment, the attempt must fail AND the result must record the mechanism
(a guard or a note); where it claims none (local: home, writes, network), the
attempt must succeed, so the table can be wrong in neither direction.
In CI (CI=true) a missing bwrap fails the bwrap tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from sandbox.backends import resolve_backend
from sandbox.backends.capabilities import contains
from sandbox.exec import ExecResult
from sandbox.limits import Limits
from tests.prereq import missing

BACKENDS = ("local", "bwrap", "container")


def _backend(name: str):
    if name == "container":
        # Not required anywhere: needs an engine with the image (KERNELGRADE_IMAGE).
        from sandbox.backends.container import unavailable_reason

        if (why := unavailable_reason()) is not None:
            pytest.skip(f"container backend unavailable: {why}")
    if name == "bwrap":
        from sandbox.backends.bwrap import unavailable_reason

        if (why := unavailable_reason()) is not None:
            missing(f"bwrap unavailable: {why}", "run scripts/install_system.sh")
    return resolve_backend(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):
    return _backend(request.param)


@pytest.fixture
def bwrap_backend():
    return _backend("bwrap")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


def run_py(backend, code: str, cwd: Path, limits: Limits = Limits(wall_s=30, memory_mb=1024), **kw) -> ExecResult:
    return backend.run([sys.executable, "-c", code], cwd=cwd, limits=limits, **kw)


def recorded(result: ExecResult, fragment: str) -> bool:
    return any(fragment in line for line in result.guards + result.notes)


# What each backend's result must say about the mechanism, per escape.
_FS = {"bwrap": "filesystem: new mount namespace", "container": "filesystem: read-only root"}
GUARD = {
    "env_secret": dict.fromkeys(BACKENDS, "environment: allowlist only"),
    "home_read": _FS,
    "write_outside": _FS,
    "network": {"bwrap": "network: none", "container": "network: none (--network none)"},
    "memory_bomb": {"local": "memory: RLIMIT_AS=512 MB", "bwrap": "memory: RLIMIT_AS=512 MB",
                    "container": "memory: cgroup --memory 512 MB"},
    "detached_child": {"local": "leftover process(es) outside the process group",
                       "bwrap": "own pid namespace", "container": "killed and removed"},
}


def live_processes_with(marker: str) -> list[int]:
    """Host pids (not zombies) whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def test_env_secret(backend, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-escape-test-openai")
    monkeypatch.setenv("HF_TOKEN", "hf-escape-test-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-escape-test")
    code = "import os; print('\\n'.join(f'{k}={v}' for k, v in os.environ.items()))"
    result = run_py(backend, code, workspace, env_extra={"MY_API_KEY": "extra-escape-test", "KG_OK": "1"})
    assert result.ok, result.stderr
    assert "escape-test" not in result.stdout
    assert "KG_OK=1" in result.stdout  # harmless extras still arrive: the filter is by name
    assert f"HOME={os.environ['HOME']}\n" not in result.stdout
    assert contains(backend.name, "env_secret")
    assert recorded(result, GUARD["env_secret"][backend.name])


def test_home_read(backend, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "realhome"
    (home / ".config").mkdir(parents=True)
    secret = home / ".config" / "credentials"
    secret.write_text("home-secret-7f3a")
    secret.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))  # the harness's $HOME is what an attacker targets
    code = (f"import os\ntry:\n    print(open({str(secret)!r}).read())\nexcept OSError as e:\n    print('DENIED', e)\n"
            "print('HOME', os.environ.get('HOME'))")
    result = run_py(backend, code, workspace)
    assert result.ok, result.stderr
    assert f"HOME {home}\n" not in result.stdout
    mechanism = contains(backend.name, "home_read")
    if mechanism is None:
        # Documented as not contained by this backend: same uid, same filesystem.
        assert "home-secret-7f3a" in result.stdout
    else:
        assert "home-secret-7f3a" not in result.stdout and "DENIED" in result.stdout
        assert recorded(result, GUARD["home_read"][backend.name])


def test_real_home_not_visible_in_bwrap(bwrap_backend, workspace: Path) -> None:
    real = Path(os.path.expanduser("~"))
    code = (f"import json, os\ntry:\n    print(json.dumps(os.listdir({str(real)!r})))\n"
            "except OSError as e:\n    print('GONE', e)")
    result = run_py(bwrap_backend, code, workspace)
    assert result.ok, result.stderr
    host_entries = set(os.listdir(real)) if real.is_dir() else set()
    from sandbox.backends.bwrap import default_ro_paths

    # Only parents of bound read-only paths (e.g. ~/.pyenv for the interpreter) may show.
    allowed = {p.relative_to(real).parts[0] for p in default_ro_paths() if real in p.parents}
    if "GONE" not in result.stdout:
        seen = set(json.loads(result.stdout))
        assert seen <= allowed, seen - allowed
    assert host_entries - allowed, "test needs a home with something to hide"


def test_read_only_path_reached_through_a_link_in_bwrap(bwrap_backend, workspace: Path, tmp_path: Path) -> None:
    """A venv reached by a symbolic link (.venv -> /elsewhere/venv) is bound at its real
    place and the link recreated, so the link's path works inside and stays read-only."""
    real = tmp_path / "elsewhere" / "venv"
    real.mkdir(parents=True)
    (real / "marker.txt").write_text("through the link")
    link = tmp_path / "outside" / ".venv"
    link.parent.mkdir()
    link.symlink_to(real)
    code = "\n".join([f"print(open({str(link / 'marker.txt')!r}).read())", "try:",
                      f"    open({str(link / 'new.txt')!r}, 'w')", "except OSError:", "    print('READ-ONLY')"])
    result = run_py(bwrap_backend, code, workspace, ro_paths=(link,))
    assert result.ok, result.stderr
    assert "through the link" in result.stdout and "READ-ONLY" in result.stdout
    assert not (real / "new.txt").exists()


def test_write_outside(backend, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ro_dir = tmp_path / "readonly_tool"
    ro_dir.mkdir()
    targets = [outside / "pwned.txt", ro_dir / "pwned.txt", Path(f"/tmp/kg-pwned-{uuid.uuid4().hex}")]
    code = "import sys\nfor t in sys.argv[1:]:\n    try:\n        open(t, 'w').write('x'); print('WROTE', t)\n" \
           "    except OSError as e:\n        print('DENIED', t, e)\nopen('inside.txt', 'w').write('ok')"
    result = backend.run([sys.executable, "-c", code, *map(str, targets)], cwd=workspace,
                         limits=Limits(wall_s=30), ro_paths=(ro_dir,))
    assert result.ok, result.stderr
    assert (workspace / "inside.txt").read_text() == "ok"  # the workspace itself is writable
    escaped = [t for t in targets if t.exists()]
    for t in escaped:
        t.unlink()
    if contains(backend.name, "write_outside") is None:
        assert escaped, "local is documented as not containing writes; the attempt should have worked"
    else:
        assert escaped == []
        assert f"DENIED {ro_dir / 'pwned.txt'}" in result.stdout  # read-only bind refuses it
        assert recorded(result, GUARD["write_outside"][backend.name])


class _LoopbackServer:
    """A TCP listener on 127.0.0.1 that records whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_network(backend, workspace: Path) -> None:
    server = _LoopbackServer()
    try:
        code = ("import socket\ntry:\n"
                f"    socket.create_connection(('127.0.0.1', {server.port}), timeout=3).close(); print('CONNECTED')\n"
                "except OSError as e:\n    print('REFUSED', e)")
        result = run_py(backend, code, workspace)
        time.sleep(0.3)
    finally:
        server.close()
    assert result.ok, result.stderr
    if contains(backend.name, "network") is None:
        assert "CONNECTED" in result.stdout and server.connections == 1
    else:
        assert "REFUSED" in result.stdout and server.connections == 0
        assert recorded(result, GUARD["network"][backend.name])


FORK_BOMB = """
import os, sys, time
marker = {marker!r}
refused = False
deadline = time.time() + 20
while time.time() < deadline:
    try:
        os.fork()
    except OSError:
        if not refused:
            refused = True
            print("FORK-REFUSED", flush=True)
        time.sleep(0.05)
"""


def test_fork_bomb(backend, workspace: Path) -> None:
    mechanism = contains(backend.name, "fork_bomb")
    if mechanism is None:
        pytest.xfail("running as root without a writable pids cgroup: nothing bounds a fork bomb here "
                     "(the kernel exempts root from RLIMIT_NPROC); not run")
    marker = f"kg-bomb-{uuid.uuid4().hex}"
    # RLIMIT_NPROC counts every process of this uid (a CI runner's own included), so the
    # limit there is what already runs plus headroom; a cgroup counts only the sandbox.
    nproc = 24 if mechanism != "RLIMIT_NPROC" else _own_process_count() + 24
    result = run_py(backend, FORK_BOMB.format(marker=marker), workspace,
                    limits=Limits(wall_s=4, nproc=nproc, memory_mb=1024))
    assert "FORK-REFUSED" in result.stdout  # the limit stopped it, not the timeout alone
    assert live_processes_with(marker) == []
    if backend.name == "container":
        assert recorded(result, f"processes: --pids-limit {nproc}")
    elif mechanism == "cgroup pids.max":
        assert recorded(result, f"process limit reached: cgroup pids.max={nproc}")
    else:
        assert recorded(result, f"processes: RLIMIT_NPROC={nproc}")


def _own_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += 1
        except OSError:
            pass
    return count


def test_memory_bomb(backend, workspace: Path) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))"
    result = run_py(backend, code, workspace, limits=Limits(wall_s=30, memory_mb=512))
    assert not result.timed_out and result.returncode != 0
    if backend.name == "container":  # a cgroup OOM kill there, not an allocation failure
        assert result.returncode == 137 and recorded(result, "likely the --memory 512m cgroup limit")
    else:
        assert "MemoryError" in result.stderr
    assert contains(backend.name, "memory_bomb")
    assert recorded(result, GUARD["memory_bomb"][backend.name])


LOOPER = """
import subprocess, sys, time
marker = {marker!r}
child = [sys.executable, "-c", "import time\\nwhile True: time.sleep(1)", marker]
subprocess.Popen(child)                               # background grandchild, same group
subprocess.Popen(child, start_new_session={detach})   # maybe setsid()ed out of the group
print("STARTED", flush=True)
while True:
    pass
"""


def _loop(backend, workspace: Path, detach: bool) -> tuple[ExecResult, list[int]]:
    marker = f"kg-loop-{uuid.uuid4().hex}"
    result = run_py(backend, LOOPER.format(marker=marker, detach=detach), workspace,
                    limits=Limits(wall_s=3, memory_mb=1024))
    time.sleep(0.2)
    survivors = live_processes_with(marker)
    return result, survivors


def test_infinite_loop(backend, workspace: Path) -> None:
    result, survivors = _loop(backend, workspace, detach=False)
    assert result.timed_out and result.returncode is None
    assert "STARTED" in result.stdout
    assert survivors == []
    assert 2.5 < result.wall_s < 15
    assert contains(backend.name, "infinite_loop")
    assert recorded(result, "killed after 3 s wall-clock")


def test_detached_child(backend, workspace: Path) -> None:
    mechanism = contains(backend.name, "detached_child")
    result, survivors = _loop(backend, workspace, detach=True)
    try:
        assert result.timed_out
        if mechanism is None:
            assert survivors, "documented as not contained; the setsid()ed grandchild should have survived"
        else:
            assert survivors == []
            assert recorded(result, GUARD["detached_child"][backend.name])
    finally:
        for pid in survivors:
            os.kill(pid, 9)


def test_output_flood(backend, workspace: Path) -> None:
    flood_mb = 200
    code = (f"import sys\nline = b'x' * 1023 + b'\\n'\nfor _ in range({flood_mb} * 1024):\n"
            "    sys.stdout.buffer.write(line)\nsys.stdout.buffer.write(b'END-OF-FLOOD\\n')")
    keep = 64 * 1024
    # tracemalloc sees every Python allocation, the reader threads' included: a buffered
    # flood would show as a peak near flood_mb.
    tracemalloc.start()
    try:
        result = run_py(backend, code, workspace, limits=Limits(wall_s=60, output_bytes=keep))
        grew_mb = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
    finally:
        tracemalloc.stop()
    assert result.ok, result.stderr
    assert result.stdout_bytes == flood_mb * 1024 * 1024 + len(b"END-OF-FLOOD\n")
    assert len(result.stdout) < keep + 200
    assert result.stdout.rstrip().endswith("END-OF-FLOOD")  # the tail is what is kept
    assert grew_mb < 8, f"harness allocated {grew_mb:.0f} MB at peak: output was buffered"
    assert recorded(result, f"stdout truncated: kept the last {keep}")


def test_extracted_paths_stay_in_workspace(tmp_path: Path) -> None:
    """Path traversal in an answer never reaches the filesystem outside the workspace
    (the extraction helper's own tests go further; this is the sandbox's view)."""
    from harness.extract.answer import extract_to_workspace

    answer = ("```cuda path=../escape.cu\n__global__ void k() {}\n```\n"
              "```cuda path=/tmp/abs-escape.cu\n__global__ void k() {}\n```\n"
              "```cuda path=ok/kernel.cu\n__global__ void k() {}\n```\n")
    dest = tmp_path / "ws"
    extraction = extract_to_workspace(answer, dest)
    assert extraction.files == ["ok/kernel.cu"]
    assert not (tmp_path / "escape.cu").exists()
    assert not Path("/tmp/abs-escape.cu").exists()
    assert sum(f.severity == "error" for f in extraction.findings) == 2


def test_gpu_nodes_bound_only_for_gpu_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sandbox.backends import bwrap

    monkeypatch.setattr(bwrap, "gpu_device_nodes", lambda: ["/dev/nvidia0", "/dev/nvidiactl"])
    plain = bwrap.bwrap_command(["true"], cwd=tmp_path)
    gpu = bwrap.bwrap_command(["true"], cwd=tmp_path, gpu=True)
    assert not any(arg.startswith("/dev/nvidia") for arg in plain)
    assert "--share-net" not in plain and "--share-net" not in gpu
    i = gpu.index("/dev/nvidia0")
    assert gpu[i - 1] == "--dev-bind" and gpu[i + 1] == "/dev/nvidia0"
    assert gpu.index("--bind") > i  # the workspace is bound after the read-only system binds


def test_read_only_path_inside_workspace_stays_read_only(bwrap_backend, workspace: Path) -> None:
    src = workspace / "src"
    src.mkdir()
    (src / "kernel.cu").write_text("original")
    code = ("import sys\nfor t in ('src/kernel.cu', 'build.o'):\n    try:\n        open(t, 'w').write('x'); print('WROTE', t)\n"
            "    except OSError as e:\n        print('DENIED', t)")
    result = bwrap_backend.run([sys.executable, "-c", code], cwd=workspace, limits=Limits(wall_s=30),
                               ro_paths=(src,))
    assert result.ok, result.stderr
    assert result.stdout.split("\n")[:2] == ["DENIED src/kernel.cu", "WROTE build.o"]
    assert (src / "kernel.cu").read_text() == "original"


def test_no_nested_user_namespace_in_bwrap(bwrap_backend, workspace: Path) -> None:
    from sandbox.backends.bwrap import _probe

    if not _probe()[2]:
        pytest.xfail("bwrap older than 0.8: --disable-userns unavailable, nested namespaces allowed")
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER\n    print('NESTED')\n"
            "else:\n    print('REFUSED', os.strerror(ctypes.get_errno()))")
    result = run_py(bwrap_backend, code, workspace)
    assert result.ok, result.stderr
    assert "REFUSED" in result.stdout
    assert recorded(result, "no nested user namespaces")


def test_no_fork_bomb_claim_for_root_without_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root is exempt from RLIMIT_NPROC: with no pids cgroup, neither the table nor the
    result may claim a process limit."""
    import sandbox.backends.capabilities as caps
    import sandbox.cgroup
    import sandbox.exec

    monkeypatch.setattr(sandbox.cgroup.PidsCgroup, "create", classmethod(lambda cls, limit: None))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    caps.pids_mechanism.cache_clear()
    try:
        assert caps.contains("local", "fork_bomb") is None
        assert caps.contains("bwrap", "fork_bomb") is None
        assert caps.contains("local", "detached_child") is None
        guards = sandbox.exec._limit_guards(Limits(nproc=16), None)
        assert "processes: RLIMIT_NPROC=16 set but NOT enforced (running as root, no pids cgroup)" in guards
    finally:
        caps.pids_mechanism.cache_clear()


def test_symlinks_left_in_workspace_are_not_followed(backend, workspace: Path, tmp_path: Path) -> None:
    """Code in the sandbox plants symlinks to a host secret; the harness reading its
    outputs back through sandbox.readback must refuse them, not leak the target."""
    from sandbox.readback import WorkspaceEscape, read_text

    secret = tmp_path / "host-secret.txt"
    secret.write_text("host-secret-91c2")
    (tmp_path / "secretdir").mkdir()
    (tmp_path / "secretdir" / "result.json").write_text("host-secret-dir-91c2")
    code = ("import os, sys\nos.symlink(sys.argv[1], 'result.json')\nos.symlink(sys.argv[2], 'out')\n"
            "os.makedirs('ok', exist_ok=True)\nopen('ok/result.json', 'w').write('{\"fine\": 1}')")
    result = backend.run([sys.executable, "-c", code, str(secret), str(tmp_path / "secretdir")],
                         cwd=workspace, limits=Limits(wall_s=30))
    assert result.ok, result.stderr
    assert read_text(workspace, "ok/result.json") == '{"fine": 1}'
    with pytest.raises(WorkspaceEscape, match="result.json is a symlink"):
        read_text(workspace, "result.json")
    with pytest.raises(WorkspaceEscape, match="out is a symlink"):
        read_text(workspace, "out/result.json")
    for bad in ("../host-secret.txt", "/etc/passwd", "ok/../result.json"):
        with pytest.raises(WorkspaceEscape):
            read_text(workspace, bad)


SEGFAULT = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"


def test_signal_and_exit_codes_match_local(backend, workspace: Path) -> None:
    """A crash is reported as the signal (-11) by local and bwrap, not bwrap's 128+N;
    the container engines only give 128+N, and the result says so."""
    crash = run_py(backend, SEGFAULT, workspace)
    if backend.name == "container":
        assert crash.returncode == 139 and recorded(crash, "killed by signal N reports 128+N")
    else:
        assert crash.returncode == -11 and crash.signal_name == "SIGSEGV"
    plain = run_py(backend, "raise SystemExit(139)", workspace)
    assert plain.returncode == 139 and plain.signal_name is None


def test_status_channel_cannot_be_forged(bwrap_backend, workspace: Path) -> None:
    """The command cannot write to the pipe bwrap's status wrapper reports through."""
    code = ("import os\nargv = open(f'/proc/{os.getppid()}/cmdline', 'rb').read().split(b'\\0')\n"
            "fd = int(argv[5])\ntry:\n    os.write(fd, b'signal 9\\n'); print('FORGED')\n"
            "except OSError as e:\n    print('EBADF' if e.errno == 9 else e)")
    result = run_py(bwrap_backend, code, workspace)
    assert result.stdout.strip() == "EBADF" and result.returncode == 0
