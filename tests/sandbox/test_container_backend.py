"""Container backend: the engine command line (pure), availability, and a real run
where an engine and the image exist (podman with a locally imported image here;
docker on a GPU node with the kernelgrade-cuda image)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.errors import SandboxUnavailable
from sandbox.backends import container as ct
from sandbox.backends import resolve_backend
from sandbox.limits import Limits, scrubbed_env

LIMITS = Limits(wall_s=30, cpu_s=20, memory_mb=512, file_mb=64, nproc=32)


def flag_value(cmd: list[str], flag: str) -> list[str]:
    """Every value given to `flag` (a flag may repeat, e.g. -v)."""
    return [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg == flag]


def build(tmp_path: Path, **kw) -> list[str]:
    args = dict(engine="docker", image="kernelgrade-cuda", cwd=tmp_path / "ws", limits=LIMITS,
                env=scrubbed_env("/home/sandbox"), name="kg-test")
    args.update(kw)
    return ct.container_command(["nvcc", "--version"], **args)


def test_docker_command_limits_and_isolation(tmp_path: Path) -> None:
    cmd = build(tmp_path)
    assert cmd[:2] == ["docker", "run"]
    assert "--runtime" not in cmd
    assert flag_value(cmd, "--network") == ["none"]
    assert flag_value(cmd, "--memory") == ["512m"]
    assert flag_value(cmd, "--pids-limit") == ["32"]
    assert flag_value(cmd, "--cap-drop") == ["ALL"]
    assert "--read-only" in cmd and "--rm" in cmd
    assert f"{tmp_path / 'ws'}:/work:rw" in flag_value(cmd, "-v")
    assert flag_value(cmd, "-w") == ["/work"]
    assert "cpu=20:20" in flag_value(cmd, "--ulimit")
    assert "--gpus" not in cmd
    image_at = cmd.index("kernelgrade-cuda")
    assert cmd[image_at + 1:] == ["nvcc", "--version"]


def test_gpu_flags_per_engine(tmp_path: Path) -> None:
    assert flag_value(build(tmp_path, gpu=True), "--gpus") == ["all"]
    podman = build(tmp_path, engine="/usr/bin/podman", gpu=True)
    assert "--gpus" not in podman
    assert flag_value(podman, "--device") == ["nvidia.com/gpu=all"]


def test_podman_needs_runc_and_explicit_ulimits(tmp_path: Path) -> None:
    cmd = build(tmp_path, engine="/usr/bin/podman")
    assert cmd[:4] == ["/usr/bin/podman", "--runtime", "runc", "run"]
    ulimits = flag_value(cmd, "--ulimit")
    assert "nproc=32:32" in ulimits and "nofile=1024:1024" in ulimits


def test_network_and_memory_options(tmp_path: Path) -> None:
    cmd = build(tmp_path, network=True, limits=Limits(memory_mb=0))
    assert "--network" not in cmd
    assert "--memory" not in cmd


def test_environment_has_no_secrets_or_host_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-container-test")
    monkeypatch.setenv("VIRTUAL_ENV", "/host/venv")
    env = scrubbed_env("/home/sandbox", {"HF_TOKEN": "hf-container-test", "KG_FLAG": "1"})
    cmd = build(tmp_path, env=env)
    values = flag_value(cmd, "-e")
    assert not any("container-test" in v for v in values)
    assert "KG_FLAG=1" in values and "HOME=/home/sandbox" in values
    assert not any(v.startswith(("PATH=", "VIRTUAL_ENV=", "LD_LIBRARY_PATH=")) for v in values)


def test_host_paths_are_translated(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    tool = Path("/opt/kg-tool")
    inside_work = Path("/work/main/.venv/include")  # would land inside the /work mount
    cmd = ct.container_command(
        [sys.executable, f"{ws}/run.py", f"-I{tool}/include", f"--out={ws}/o.json", "plain"],
        engine="docker", image="img", cwd=ws, limits=LIMITS, env={}, ro_paths=(tool, inside_work))
    mounts = flag_value(cmd, "-v")
    assert f"{tool}:{tool}:ro" in mounts
    assert f"{inside_work}:/ro/1-include:ro" in mounts
    assert cmd[cmd.index("img") + 1:] == ["python3", "/work/run.py", f"-I{tool}/include", "--out=/work/o.json", "plain"]


def test_env_paths_are_translated(tmp_path: Path) -> None:
    repo = Path("/work/main")  # a checkout inside the /work mount point: moved under /ro/
    cmd = ct.container_command(["true"], engine="docker", image="img", cwd=tmp_path, limits=LIMITS,
                               env={"PYTHONPATH": str(repo), "KG": "x"}, ro_paths=(repo,))
    values = flag_value(cmd, "-e")
    assert "PYTHONPATH=/ro/0-main" in values and "KG=x" in values


def test_pass_fds_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct, "_find_engine", lambda image: ("/usr/bin/docker", ""))
    with pytest.raises(RuntimeError, match="cannot pass file descriptors"):
        ct.ContainerBackend().run(["true"], cwd=tmp_path, limits=LIMITS, pass_fds=(5,))


def test_auto_skips_container_for_commands_that_need_fds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct.ContainerBackend, "available", lambda self: True)
    assert resolve_backend("auto").name == "container"
    assert resolve_backend("auto", need_fds=True).name != "container"


def test_unavailable_without_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNELGRADE_CONTAINER_ENGINE", shutil.which("false") or "/bin/false")
    ct._find_engine.cache_clear()
    try:
        assert ct.ContainerBackend().available() is False
        assert ct.unavailable_reason()
        with pytest.raises(SandboxUnavailable, match="--sandbox container: not available"):
            resolve_backend("container")
    finally:
        ct._find_engine.cache_clear()


def test_docker_client_without_daemon_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    if subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0:
        pytest.skip("a docker daemon answers here; this test is for client-only machines")
    monkeypatch.setenv("KERNELGRADE_CONTAINER_ENGINE", docker)
    ct._find_engine.cache_clear()
    try:
        assert ct.ContainerBackend().available() is False
        assert "docker" in (ct.unavailable_reason() or "")
    finally:
        ct._find_engine.cache_clear()


def _real_engine() -> str | None:
    ct._find_engine.cache_clear()
    engine, _ = ct._find_engine(ct.image_name())
    return engine


def test_real_container_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs only where an engine has the image (KERNELGRADE_IMAGE); otherwise says why."""
    engine = _real_engine()
    if engine is None:
        pytest.skip(f"no engine with image {ct.image_name()}: {ct.unavailable_reason()}")
    ws = tmp_path / "ws"
    ws.mkdir()
    probe = ("import os\nopen('/work/from_container.txt', 'w').write('hi')\n"
             "print('NONET' if os.listdir('/sys/class/net') == ['lo'] else 'NET')\n"
             "try:\n    open('/etc/pwned', 'w')\nexcept OSError:\n    print('ROFS')\n"
             "print('KEY' if any('KEY' in k for k in os.environ) else 'NOKEY')")
    monkeypatch.setenv("KG_TEST_API_KEY", "container-secret")
    result = resolve_backend("container").run(["python3", "-c", probe], cwd=ws, limits=LIMITS)
    assert result.ok, result.stderr
    assert (ws / "from_container.txt").read_text() == "hi"
    assert result.stdout.split() == ["NONET", "ROFS", "NOKEY"]
    assert result.backend == "container"
