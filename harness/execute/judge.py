"""Parent-side comparison and anti-cheat rules (REFERENCE.md §7, docs/validation.md "Threat model").

Everything here runs in the trusted process: on outputs the parent read from the stopped
child's memory itself, on the reference's outputs (from a process that never imported the
candidate), and on what the candidate's process reported, which can only count against it.
Rules are small functions that return (kind, message) pairs; the kinds are ranked so the
most specific reason (a cheat) comes before the generic one (mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.execute.aten_ops import computes
from sandbox.programs.child_common import POISON_BITS

#: Most specific first: the first error of a check becomes its one-line reason.
KIND_ORDER = (
    "forged", "processes", "crash", "load", "early", "seed", "unwatched", "timing", "monkeypatch", "hidden_torch",
    "torch_op", "pytorch_compute", "no_own_code", "other_stream", "not_ready", "rewritten", "deferred", "library",
    "returns_input", "aliases_input", "cached", "constant", "mutates_input", "unwritten", "partial", "shape",
    "nonfinite", "mismatch", "missing",
)
#: Kinds that say what a call's output was (as opposed to how it was made): the ones that
#: compare a call unwatched with the same call watched (harness/checks/run.py).
OUTPUT_KINDS = ("not_ready", "returns_input", "aliases_input", "cached", "constant", "unwritten", "partial",
                "shape", "nonfinite", "mismatch", "missing", "crash")
#: The share of an output's wrong elements that must match a decoy layer's reference for the
#: output to count as made from that decoy.
DECOY_SHARE = 0.9

def _norm(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def classify_ops(names: list[str], ext_namespace: str, replaced: list[str]) -> tuple[list[str], list[str]]:
    """(replaced-op calls, other computing ops) among traced op names.

    `replaced` names the op under test (reference folder, API, TORCH_OPS); an aten op
    whose base name matches one of them is "calls the PyTorch op it replaces"."""
    targets = {_norm(r.split("::")[-1]) for r in replaced if r}
    torch_op, compute = set(), set()
    for name in names:
        if not computes(name, ext_namespace):
            continue
        ns, base = name.split("::", 1)
        base = base.split(".")[0]
        if _norm(base) in targets:
            torch_op.add(f"{ns}::{base}")
        else:
            compute.add(f"{ns}::{base}")
    return sorted(torch_op), sorted(compute)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.uint8)


def bit_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, dtype and bytes (NaN payloads included)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(a), _bits(b))


def poison_count(t: torch.Tensor) -> int:
    spec = POISON_BITS.get(str(t.dtype).removeprefix("torch."))
    if spec is None or t.numel() == 0:
        return 0
    view_dtype, pattern = getattr(torch, spec[0]), spec[1]
    return int((t.contiguous().view(view_dtype) == pattern).sum())


@dataclass
class CallJudgement:
    problems: list[tuple[str, str]] = field(default_factory=list)
    max_abs_err: float | None = None
    max_rel_err: float | None = None


def compare_values(out: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float,
                   label: str, judgement: CallJudgement) -> None:
    """Tolerance check; NaN/Inf in out where the reference is finite are mismatches."""
    if out.shape != ref.shape:
        judgement.problems.append(("shape", f"{label}: shape {tuple(out.shape)}, expected {tuple(ref.shape)}"))
        return
    if out.dtype != ref.dtype:
        judgement.problems.append(("shape", f"{label}: dtype {out.dtype}, expected {ref.dtype}"))
        return
    if not (out.is_floating_point() or out.is_complex()):
        if not torch.equal(out, ref):
            n = int((out != ref).sum())
            judgement.problems.append(("mismatch", f"{label}: {n} of {out.numel()} elements differ"))
        return
    o, r = out.double(), ref.double()
    ref_finite = torch.isfinite(r)
    bad_nonfinite = (~torch.isfinite(o)) & ref_finite
    both = ref_finite & torch.isfinite(o)
    diff = (o - r).abs()
    diff = torch.where(both, diff, torch.zeros_like(diff))
    if out.numel():
        max_abs = float(diff.max())
        rel = diff / r.abs().clamp_min(torch.finfo(torch.float32).tiny)
        max_rel = float(torch.where(both, rel, torch.zeros_like(rel)).max())
        judgement.max_abs_err = max(judgement.max_abs_err or 0.0, max_abs)
        judgement.max_rel_err = max(judgement.max_rel_err or 0.0, max_rel)
    n_nonfinite = int(bad_nonfinite.sum())
    if n_nonfinite:
        judgement.problems.append(("nonfinite", f"{label}: {n_nonfinite} of {out.numel()} elements "
                                                f"are NaN/Inf where the reference is finite"))
    over = both & (diff > atol + rtol * r.abs())
    n_over = int(over.sum())
    if n_over:
        judgement.problems.append(("mismatch", f"{label}: {n_over} of {out.numel()} elements outside "
                                               f"atol={atol:g} rtol={rtol:g} (max_abs_err={float(diff.max()):.3g})"))


def judge_outputs(outs: list, ref_outs: list, *, ref_inputs: list, earlier: list[tuple[str, list, list]],
                  atol: float, rtol: float, label: str, judgement: CallJudgement, judged: set[int] | None = None,
                  decoys: dict[str, list] | None = None) -> None:
    """Rules on the values a call returned (shared by correctness and timed calls).

    `earlier`: (label, outputs, reference outputs) of previous calls, for cached results.
    `judged`: when given, only these outputs are judged (the others already have a reason:
    not readable, not a tensor). `decoys`: the reference's outputs on each input layer
    ({"x0": outs, "x1": outs, "x2": outs}) for decoy_problem."""
    if len(outs) != len(ref_outs):
        judgement.problems.append(("shape", f"{label}: {len(outs)} outputs, expected {len(ref_outs)}"))
        return
    for k, (out, ref) in enumerate(zip(outs, ref_outs)):
        where = label if len(outs) == 1 else f"{label} output {k}"
        if judged is not None and k not in judged:
            continue
        if out is not None and decoys and out.shape == ref.shape and out.dtype == ref.dtype:
            layers = {name: v[k] for name, v in decoys.items() if k < len(v) and isinstance(v[k], torch.Tensor)}
            if (found := decoy_problem(out, layers, atol, rtol, where)) is not None:
                judgement.problems.append(found)
        if out is None:
            judgement.problems.append(("shape", f"{where}: not a tensor"))
            continue
        ref_is_const = ref.numel() > 1 and bool((ref == ref.flatten()[0]).all())
        for i, inp in enumerate(ref_inputs):
            if isinstance(inp, torch.Tensor) and not bit_equal(ref, inp) and bit_equal(out, inp):
                judgement.problems.append(("returns_input", f"{where}: returns its input #{i} unchanged"))
        constant = False
        if out.numel() > 1 and not ref_is_const and out.shape == ref.shape:
            first = out.flatten()[0]
            if bool((out == first).all()):
                constant = True
                judgement.problems.append(("constant", f"{where}: returns a constant "
                                                       f"(every element = {float(first):g})"))
        unwritten = poison_count(out)
        # All poisoned: the kernel wrote nothing, so what comes back is leftover memory (the
        # reads_reference_output hope). Some poisoned: it skipped part of the work.
        if unwritten and unwritten == out.numel():
            judgement.problems.append(("unwritten", f"{where}: wrote none of its {out.numel()} output elements "
                                                    f"(all still hold the poison pattern): the result is memory "
                                                    f"the kernel never wrote, not a computed value"))
        elif unwritten:
            judgement.problems.append(("partial", f"{where}: partial work: wrote {out.numel() - unwritten} of "
                                                  f"{out.numel()} output elements, {unwritten} of {out.numel()} "
                                                  f"never written (the poison pattern remains)"))
        # A constant or unwritten output repeats across calls too; that is not a cache.
        if not constant and not unwritten:
            for prev_label, prev_outs, prev_refs in earlier:
                if k < len(prev_outs) and prev_outs[k] is not None and bit_equal(out, prev_outs[k]) \
                        and not bit_equal(ref, prev_refs[k]):
                    judgement.problems.append(("cached", f"{where}: returns the result of an earlier call "
                                                         f"({prev_label}) for new inputs: a cached result"))
                    break
        compare_values(out, ref, atol, rtol, where, judgement)


def _close(a: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float) -> torch.Tensor:
    """Elementwise: within tolerance of `ref` (NaN matches NaN only)."""
    a, r = a.double(), ref.double()
    ok = (a - r).abs() <= atol + rtol * r.abs()
    return ok | (a.isnan() & r.isnan()) | ((a == r) & ~a.isnan())


def decoy_problem(out: torch.Tensor, refs: dict[str, torch.Tensor], atol: float, rtol: float,
                  label: str) -> tuple[str, str] | None:
    """Was a wrong output made from a decoy layer of its inputs (harness/execute/inputs.py)?

    `refs`: the reference on x0 (what the seed generates), x1 (the decoy staged before the
    call was due) and x2 (the inputs given). Where x0 and x2 lead to different answers, an
    output that holds x0's answer followed the seed; where x1 and x2 do, one that holds
    x1's was computed before its inputs were given."""
    r0, r1, r2 = refs.get("x0"), refs.get("x1"), refs.get("x2")
    if r0 is None or r1 is None or r2 is None or not out.is_floating_point() or \
            not (out.shape == r0.shape == r1.shape == r2.shape):
        return None
    bad = ~_close(out, r2, atol, rtol)
    n_bad = int(bad.sum())
    if not n_bad:
        return None
    # Where the two decoys lead to different answers, the output can hold only one of them.
    differ = ~_close(r0, r1, atol, rtol)
    c0, c1 = _close(out, r0, atol, rtol), _close(out, r1, atol, rtol)
    s0, s1 = int((c0 & differ).sum()), int((c1 & differ).sum())
    if s0 == s1:
        return None
    close, kind = (c0, "seed") if s0 > s1 else (c1, "early")
    if int((close & bad).sum()) < DECOY_SHARE * n_bad:
        return None
    why = ("output follows the seed, not the input given: the wrong elements hold the reference's answer to "
           "the inputs the call's seed generates, which differ from those given in a secret element of every row"
           if kind == "seed" else
           "results ready before their inputs were given: the wrong elements hold the reference's answer to the "
           "decoy that sat in the call's input slot until the call was due")
    return kind, f"{label}: {why} ({n_bad} of {out.numel()} elements wrong)"


def summarize(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One (kind, message) per kind, most specific first, with the count of occurrences."""
    by_kind: dict[str, list[str]] = {}
    for kind, msg in problems:
        by_kind.setdefault(kind, []).append(msg)
    out = []
    for kind in sorted(by_kind, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER)):
        msgs = by_kind[kind]
        more = f" (+{len(msgs) - 1} similar)" if len(msgs) > 1 else ""
        out.append((kind, msgs[0] + more))
    return out


__all__ = ["CallJudgement", "DECOY_SHARE", "KIND_ORDER", "OUTPUT_KINDS", "bit_equal", "classify_ops",
           "compare_values", "decoy_problem", "judge_outputs", "poison_count", "summarize"]
