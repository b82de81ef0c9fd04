"""CUDA capabilities as build.toml spells them ("9.0", "9.0a", "10.0f", "9.0+PTX"): one grammar
for the build_toml check, the nvcc plan and the prompts."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Compute capabilities that exist on some NVIDIA GPU (10.1 was renamed 11.0 in CUDA 13).
KNOWN_CAPABILITIES = {
    (2, 0), (2, 1), (3, 0), (3, 2), (3, 5), (3, 7), (5, 0), (5, 2), (5, 3), (6, 0), (6, 1),
    (6, 2), (7, 0), (7, 2), (7, 5), (8, 0), (8, 6), (8, 7), (8, 8), (8, 9), (9, 0), (10, 0),
    (10, 1), (10, 3), (11, 0), (12, 0), (12, 1),
}
#: What CUDA 13's nvcc can target (`nvcc --list-gpu-code` with nvcc 13.0: sm_75 .. sm_121).
CUDA13_CAPABILITIES = {
    (7, 5), (8, 0), (8, 6), (8, 7), (8, 8), (8, 9), (9, 0), (10, 0), (10, 3), (11, 0), (12, 0), (12, 1),
}
#: Architecture-specific ("a") targets exist from sm_90a on.
ARCH_SPECIFIC = {(9, 0), (10, 0), (10, 3), (11, 0), (12, 0), (12, 1)}
#: kernel-builder's list when a CUDA kernel has no cuda-capabilities and CUDA >= 13
#: (kernel-builder/src/pyproject/templates/torch/preamble.cmake, CUDA_DEFAULT_KERNEL_ARCHS).
#: The kernels 0.17.2 wheel carries no default list of its own: the builder owns it.
BUILDER_DEFAULT_CAPABILITIES = ["7.5", "8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "11.0", "12.0", "12.1+PTX"]
H100 = (9, 0)

_CAP_RE = re.compile(r"^(\d+)\.(\d+)([af]?)(\+PTX)?$")


@dataclass(frozen=True)
class Capability:
    major: int
    minor: int
    suffix: str
    """"a" (architecture-specific), "f" (family) or ""."""
    ptx: bool
    """"+PTX": SASS for the arch plus PTX for its virtual arch, for newer GPUs to JIT."""

    @property
    def version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def arch(self) -> str:
        """The real architecture nvcc builds SASS for: sm_90, sm_90a."""
        return f"sm_{self.major}{self.minor}{self.suffix}"

    @property
    def virtual(self) -> str:
        return self.arch.replace("sm_", "compute_")

    @property
    def gencode(self) -> list[str]:
        """nvcc flags: SASS for the arch and, with +PTX, PTX for its virtual arch as well.
        Two pairs, because "code=sm_90,compute_90" is not one nvcc understands."""
        flags = ["-gencode", f"arch={self.virtual},code={self.arch}"]
        if self.ptx:
            flags += ["-gencode", f"arch={self.virtual},code={self.virtual}"]
        return flags


def parse_capability(text: str) -> Capability | None:
    """"9.0", "9.0a", "10.0f", "9.0+PTX" -> Capability; forms the builder does not know -> None."""
    m = _CAP_RE.match(str(text).strip())
    if m is None:
        return None
    return Capability(int(m[1]), int(m[2]), m[3], bool(m[4]))


def capability_fix(text: str) -> str | None:
    """The builder's spelling of "sm_90", "90", "compute_90a", "sm90": "9.0", "9.0a"."""
    m = re.match(r"^(?:sm|compute|arch)?_?(\d{2,3})([af]?)$", text.strip(), re.IGNORECASE)
    if m is None:
        return None
    digits = m[1]
    return f"{int(digits[:-1])}.{digits[-1]}{m[2].lower()}"


def covers(entries: list[Capability], required: Capability) -> bool:
    """Does a kernel built for `entries` provide the case's required target?

    "9.0" is met by 9.0, 9.0a or 9.0+PTX (an H100 runs all three); "9.0a" only by 9.0a
    (wgmma and friends exist only in the arch-specific build).
    """
    for entry in entries:
        if entry.version != required.version:
            continue
        if required.suffix == "a" and entry.suffix != "a":
            continue
        return True
    return False


def own_target(caps: list[Capability]) -> Capability | None:
    """The capability a check compiles a kernel with no H100 target for, so its sources are
    still compiled as kernel-builder would (the newest one CUDA 13 can build); None if none is."""
    buildable = [c for c in caps if c.version in CUDA13_CAPABILITIES and c.version in KNOWN_CAPABILITIES]
    return max(buildable, key=lambda c: (c.version, c.suffix == "a")) if buildable else None


__all__ = ["ARCH_SPECIFIC", "BUILDER_DEFAULT_CAPABILITIES", "CUDA13_CAPABILITIES", "Capability", "H100",
           "KNOWN_CAPABILITIES", "capability_fix", "covers", "own_target", "parse_capability"]
