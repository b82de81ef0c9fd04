"""Disassemble compiled objects with cuobjdump and read the SASS per kernel.

cuobjdump -sass prints, per embedded cubin, `code for sm_XX` and then for each
function `Function : <mangled>` followed by lines `/*0010*/  OPCODE operands ; /* hex */`.
We keep, per (arch, kernel), the opcode sequence and a histogram.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from harness.build.cache import BuildCache, content_key
from sandbox.limits import Limits
from sandbox.run import run_sandboxed

_CODE_FOR = re.compile(r"^\s*code for (sm_\w+)")
_FUNCTION = re.compile(r"^\s*Function : (\S+)")
_INSN = re.compile(r"^\s*/\*[0-9a-f]{4,}\*/\s+(?P<text>[^;]*?)\s*;")
_PRED = re.compile(r"^@!?U?P\w+\s+")

#: The whole body of a kernel whose code was compiled away: the stack-pointer load,
#: EXIT and the trailing self-branch (NOP padding is ignored everywhere).
EMPTY_BODY = ("LDC R1, c[0x0][0x28]", "EXIT", "BRA")


class KernelSass(BaseModel):
    name: str
    """Mangled name as cuobjdump prints it (demangled by the caller for display)."""
    arch: str
    opcodes: list[str] = Field(default_factory=list)
    """Full opcodes with modifiers (LDG.E.128), predicates stripped, NOPs dropped."""
    lines: list[str] = Field(default_factory=list)
    """Instruction texts (opcode and operands), NOPs dropped."""

    @property
    def histogram(self) -> dict[str, int]:
        """Counts by base opcode (LDG.E.128 -> LDG)."""
        return dict(Counter(op.split(".", 1)[0] for op in self.opcodes).most_common())

    @property
    def empty(self) -> bool:
        """Nothing but the prologue, EXIT and the self-branch."""
        rest = [ln for ln in self.lines if not any(ln == e or ln.startswith(e + " ") for e in EMPTY_BODY)]
        return not rest

    def has(self, marker: str) -> int:
        """How many instructions match `marker`: the base opcode, or a prefix of the full one."""
        return sum(1 for op in self.opcodes if op.split(".", 1)[0] == marker or op.startswith(marker))


class ObjectSass(BaseModel):
    arches: list[str] = Field(default_factory=list)
    """Architectures with SASS in the object (`code for sm_XX`)."""
    kernels: list[KernelSass] = Field(default_factory=list)


def parse_sass(text: str) -> ObjectSass:
    out = ObjectSass()
    arch: str | None = None
    current: KernelSass | None = None
    for line in text.splitlines():
        if m := _CODE_FOR.match(line):
            arch = m.group(1)
            if arch not in out.arches:
                out.arches.append(arch)
            current = None
            continue
        if m := _FUNCTION.match(line):
            current = KernelSass(name=m.group(1), arch=arch or "?")
            out.kernels.append(current)
            continue
        if current is None:
            continue
        if m := _INSN.match(line):
            text_ = _PRED.sub("", m.group("text").strip())
            if not text_:
                continue
            opcode = text_.split()[0]
            if opcode == "NOP":
                continue
            current.opcodes.append(opcode)
            current.lines.append(" ".join(text_.split()))
    return out


#: The largest disassembly kept (the sandbox's file-size limit on cuobjdump's output).
SASS_MAX_MB = 2048


def disassemble(obj: Path, cuobjdump: Path, *, cuobjdump_version: str, sandbox: str = "auto",
                timeout_s: float = 120.0, cache: BuildCache | None = None) -> tuple[ObjectSass, str, bool]:
    """(parsed SASS, raw text path, cache hit). The object came from untrusted source, so
    cuobjdump runs sandboxed too. Raises RuntimeError when cuobjdump fails."""
    cache = cache or BuildCache("sass")
    data = obj.read_bytes()
    key = content_key(files={"object": data}, tool=cuobjdump_version, kind="sass-v1")
    failure: dict[str, str] = {}

    def build(tmp: Path) -> bool:
        work = Path(tempfile.mkdtemp(dir=tmp))
        (work / "input.o").write_bytes(data)
        # Into a file, not a pipe: a heavily templated unit (kernels-community's causal-conv1d
        # backward) disassembles to hundreds of MB, past what a pipe's reader keeps.
        res = run_sandboxed(["/usr/bin/sh", "-c", 'exec "$0" -sass input.o > sass.out', str(cuobjdump)],
                            cwd=work, backend=sandbox,
                            limits=Limits(wall_s=timeout_s, cpu_s=int(timeout_s) + 30, memory_mb=4096,
                                          file_mb=SASS_MAX_MB))
        out = work / "sass.out"
        if not res.ok or not out.is_file():
            failure["reason"] = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
            return False
        text = out.read_text(errors="replace")
        out.replace(tmp / "sass.txt")
        (tmp / "sass.json").write_text(parse_sass(text).model_dump_json())
        for child in work.iterdir():
            child.unlink()
        work.rmdir()
        return True

    entry, hit = cache.get_or_build(key, build)
    if entry is None or not (entry / "sass.json").is_file():
        raise RuntimeError(f"cuobjdump failed on {obj.name}: {failure.get('reason', 'unknown')}")
    return ObjectSass.model_validate_json((entry / "sass.json").read_text()), str(entry / "sass.txt"), hit


def short_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


__all__ = ["EMPTY_BODY", "KernelSass", "ObjectSass", "disassemble", "parse_sass"]
