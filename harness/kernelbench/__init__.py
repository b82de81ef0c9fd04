"""KernelBench in kernelgrade (issue 21): its problems as kernel cases, its answers graded by
kernelgrade's builder, runner and anti-cheat checks, its fast_p scores.

  importer.py   a KernelBench checkout -> a case file and one reference folder per problem
  analyze.py    one problem: sizes, the op's arguments, refusals (probe.py, scaling.py)
  runtime.py    a problem under the reference contract (copied beside each reference.py)
  writer.py     reference.py and the case
  answer.py     a ModelNew answer's load_inline calls, read without running it
  adapt.py      ... turned into a kernel-builder project (adapt_cpp.py: its torch binding)
  prompt.py     the task text in KernelBench's answer format
  metrics.py    fast_p and the geometric-mean speedup

Submodules are imported where used (most import torch); nothing is imported here.
"""

__all__ = ["adapt", "analyze", "answer", "importer", "metrics", "prompt", "runtime", "writer"]
