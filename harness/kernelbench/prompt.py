"""The task text for `--answer-format kernelbench`: KernelBench's way of asking (optimise
`Model` into `ModelNew`, custom code through load_inline), with kernelgrade's words and its
own one-shot example, identical in both arms like every other answer format."""

from __future__ import annotations

import re
from typing import Any

STATEMENT = (
    "You write custom {what} to replace the PyTorch operators in the given architecture to get speedups. "
    "You may replace some operators and leave others, fuse several into one kernel, or change the "
    "algorithm (online softmax, for example)."
)

INSTRUCTION = (
    "Optimize the architecture named Model with custom {what}. Name your optimized architecture ModelNew: "
    "same constructor arguments as Model, same forward inputs and outputs. Compile your code with "
    "`torch.utils.cpp_extension.load_inline(name=..., cpp_sources=..., {cuda}functions=[...])` at module level, "
    "with the sources as string literals, and call the functions it returns from ModelNew.forward. "
    "Output the whole new model code in one ```python code block: real code, no pseudocode, no testing code."
)

CPU_NOTE = (
    "It is graded on the CPU: define the functions in `cpp_sources` (C++ against torch, no CUDA), "
    "for float32 CPU tensors."
)

GRADING_NOTE = (
    "Grading: ModelNew's parameters and buffers are replaced by freshly drawn ones on every call (matched to "
    "Model's by name, else by order and shape), inputs come from secret seeds, and every PyTorch compute op "
    "that runs inside forward, beside the functions you compiled, fails the answer."
)

EXAMPLE = '''\
Example. Given

```python
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, a, b):
        return a + b
```

an answer is

```python
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

add_source = """
torch::Tensor add_cpu(torch::Tensor a, torch::Tensor b) {
    a = a.contiguous();
    b = b.contiguous();
    auto out = torch::empty_like(a);
    const float* pa = a.data_ptr<float>();
    const float* pb = b.data_ptr<float>();
    float* po = out.data_ptr<float>();
    for (int64_t i = 0; i < a.numel(); ++i) po[i] = pa[i] + pb[i];
    return out;
}
"""

add = load_inline(name="add", cpp_sources=add_source, functions=["add_cpu"])


class ModelNew(nn.Module):
    def forward(self, a, b):
        return add.add_cpu(a, b)
```
'''

_PROGRAM = re.compile(r"```python\n(.*?)\n```", re.DOTALL)


def program_of(case: Any) -> str:
    """The problem's program as the imported case shows it (its first python block)."""
    m = _PROGRAM.search(case.input)
    if m is None:
        raise ValueError(f"case {case.id}: no ```python block holding the program (not an imported KernelBench case?)")
    return m.group(1)


def kernelbench_task_text(case: Any, device: str = "cuda") -> str:
    """The whole task for one imported KernelBench case in KernelBench's answer format."""
    cpu = device == "cpu"
    what = "C++ CPU operators" if cpu else "CUDA operators"
    parts = [STATEMENT.format(what=what), "You are given the following architecture:",
             f"```python\n{program_of(case)}\n```", EXAMPLE if cpu else EXAMPLE.replace(
                 "an answer is", "an answer on the CPU (with CUDA: cuda_sources holding the kernels, "
                                 "cpp_sources the declarations) is"),
             INSTRUCTION.format(what=what, cuda="" if cpu else "cuda_sources=..., "),
             GRADING_NOTE]
    if cpu:
        parts.insert(-1, CPU_NOTE)
    return "\n\n".join(parts)


__all__ = ["kernelbench_task_text", "program_of"]
