"""The reference's own child process: `python -m sandbox.programs.reference_child SPEC.json`.

It never imports the candidate. From the same seeds as the candidate child it
regenerates the pristine inputs, computes the reference outputs (mode "outputs",
for correctness calls and for the checked timed calls) or times the reference with
the very same timing loop (mode "timing"). Running it in its own process means a
candidate that patches torch, the timer or the reference changes only its own process.
"""

from __future__ import annotations

import os
import sys

import torch

from sandbox.programs.child_common import import_by_path, ChildSpec, Pipe, flatten_outputs, make_inputs, timing_loop
from sandbox.programs.devices import get_device


def _plain(value):
    return value.detach().cpu().clone() if isinstance(value, torch.Tensor) else None


def main(argv: list[str]) -> int:
    spec = ChildSpec.model_validate_json(open(argv[1]).read())
    pipe = Pipe(spec.pipe_fd)
    dev = get_device(spec.device)
    ref = import_by_path(spec.reference_path)
    if spec.mode == "outputs":
        for call in spec.calls:
            inputs = make_inputs(ref, call.shape, call.dtype, call.seed, spec.device)
            pristine = [_plain(t) for t in inputs]
            result = ref.reference(*inputs)
            dev.sync()
            path = os.path.join(spec.out_dir, f"ref_{call.id}.pt")
            torch.save({"outputs": [_plain(v) for v in flatten_outputs(result)], "inputs": pristine}, path)
            pipe.send({"kind": "call", "id": call.id, "status": "ok", "file": path})
    elif spec.mode == "timing":
        t = spec.timing
        assert t is not None
        all_args = [make_inputs(ref, t.shape, t.dtype, s, spec.device) for s in t.seeds]
        times = timing_loop(ref.reference, lambda i: all_args[i], t, dev, lambda j, out: None)
        pipe.send({"kind": "timing", "times_ns": times})
    pipe.send({"kind": "done", "patched": []})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
