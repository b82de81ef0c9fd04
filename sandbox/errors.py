"""The one error sandbox/ raises on purpose: the backend asked for cannot be used here.

The harness shows it as a usage error (exit 2); sandbox/ imports nothing from harness/.
"""

from __future__ import annotations


class SandboxUnavailable(Exception):
    """`--sandbox NAME` is unknown or not available on this machine."""

    exit_code = 2


__all__ = ["SandboxUnavailable"]
