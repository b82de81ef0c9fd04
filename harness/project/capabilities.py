"""CUDA capabilities as build.toml spells them ("9.0", "9.0a", "10.0f", "9.0+PTX"): one grammar
for the build_toml check, the nvcc plan and the prompts."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


__all__ = ["Capability", "capability_fix", "covers", "parse_capability"]
