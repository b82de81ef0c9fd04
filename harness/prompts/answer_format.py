"""The answer-format text appended to kernel cases' prompts, identically in both arms.

The primary form is one fenced block per file whose info string is the language
followed by `path=<relative path>`, e.g. ```` ```cuda path=rmsnorm_cuda/rmsnorm.cu ````.
harness/extract/answer.py also accepts the other forms models commonly produce, but the
prompt names only this one so that both arms are asked for the same thing.
"""

from __future__ import annotations

from harness.inputs.cases import KernelSpec

PROJECT_CONTENTS = """\
The project must contain:
- `build.toml`: `[general]` (name, version, edition = 5, license, backends), a `[torch]`
  section whose `src` lists the binding sources, and one `[kernel.<name>]` table per kernel
  with `backend`, `depends`, `cuda-capabilities` and a `src` that lists every source and
  header that kernel uses (no globs).
- The CUDA sources (`.cu`, `.cuh`, `.h`) those tables list.
- The torch binding: `torch-ext/torch_binding.cpp` and `torch-ext/torch_binding.h`,
  registering the ops with `TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops)` and
  `REGISTER_EXTENSION(TORCH_EXTENSION_NAME)` from `registration.h`.
- The Python package `torch-ext/<name>/__init__.py` (dashes in the name become
  underscores) that exposes the required function and calls the ops through
  `from ._ops import ops`.

"""
"""What a kernel-builder project holds: the same words in one-shot and agent prompts."""

ANSWER_FORMAT = """\
## Answer format

Answer with a complete kernel-builder project (build.toml edition 5) that builds as is.
Give every file in its own fenced code block. The block's info string is the language,
a space, then `path=` and the file's path relative to the project root (the folder that
holds build.toml). For example:

```toml path=build.toml
[general]
name = "my-op"
...
```

```cuda path=my_op_cuda/my_op.cu
...
```

""" + PROJECT_CONTENTS + """\
Rules:
- Paths are relative, use `/`, and never contain `..`.
- Give each file once and in full: no placeholders, no diffs, no "rest unchanged".
- Do not include `registration.h` or `_ops.py`: the builder generates both.
- Code blocks without `path=` are treated as commentary and are not written.
"""

AGENT_ANSWER_FORMAT = """\
## Answer format

Build a complete kernel-builder project (build.toml edition 5) in the workspace, with
build.toml at the workspace root. Write every file with write_file, whole (no diffs).

""" + PROJECT_CONTENTS + """\
Rules:
- Paths are relative, use `/`, and never contain `..`.
- Do not write `registration.h` or `_ops.py`: the builder generates both.
- run_checks builds and checks the workspace as it stands; fix what it reports.
- Call submit when the project is done: the workspace as it is then is graded.
"""
"""Agent mode's answer format: files are written with write_file, not fenced in a reply."""


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def required_api_section(kernel: KernelSpec) -> str:
    """The "Required API" section for one case: function, GPU targets, dtypes."""
    return (
        "## Required API\n\n"
        f"- The project's Python package must expose `{kernel.api}`, importable as "
        f"`{kernel.api_name}` from the package named by build.toml `general.name` "
        "(dashes become underscores).\n"
        f"- Target CUDA capabilities: {_quoted(kernel.capabilities)}. List exactly these strings "
        "in `cuda-capabilities` of each CUDA kernel (the builder's form, e.g. \"9.0\", "
        "not \"sm_90\").\n"
        f"- Input dtypes to support: {', '.join(kernel.dtypes)}.\n"
    )


__all__ = ["AGENT_ANSWER_FORMAT", "ANSWER_FORMAT", "PROJECT_CONTENTS", "required_api_section"]
