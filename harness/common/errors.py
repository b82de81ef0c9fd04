"""Errors that reach the user as one line and an exit code (DESIGN.md "Exit codes")."""

from __future__ import annotations


class KernelgradeError(Exception):
    """Base class; exit code 3 (internal error) unless a subclass says otherwise."""

    exit_code = 3


class UserError(KernelgradeError):
    """Bad input from the user (file, option, missing key): exit code 2, no traceback."""

    exit_code = 2


class GateFailed(KernelgradeError):
    """A requested gate (--fail-under, --min-lift) did not hold: exit code 1."""

    exit_code = 1


class NothingGraded(KernelgradeError):
    """A run in which no trial could be graded: every one errored (failed model calls, harness
    faults). The report is still printed; exit code 4 so CI does not read it as a result."""

    exit_code = 4


class CostLimitReached(KernelgradeError):
    """`--max-cost` stopped the run before every trial was done (resumable): exit code 5."""

    exit_code = 5
