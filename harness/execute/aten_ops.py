"""aten op vocabulary shared by the run check's dynamic rules (harness/execute/judge.py) and the
static scan (harness/checks/scan.py). Plain data, no torch import: the scan runs at
the text level and must not pay for torch. Its home is sandbox/programs/child_common.py,
because the candidate's child applies the same rule when it makes PyTorch's compute unavailable."""

from sandbox.programs.child_common import IGNORED_NAMESPACES, TRIVIAL_ATEN, computes

__all__ = ["IGNORED_NAMESPACES", "TRIVIAL_ATEN", "computes"]
