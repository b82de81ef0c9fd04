"""harness/kernelbench/runtime.py, probe.py and scaling.py on small problems written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.kernelbench.probe import MetaFacts, ProbeRefusal, behaviour, meta_facts
from harness.kernelbench.runtime import Problem, is_dimension, size_constants, slug
from harness.kernelbench.scaling import halve, scale_for_cpu

SIZES = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self, features, layers):
        super().__init__()
        self.proj = nn.Linear(features, layers[0])
        self.out = nn.Linear(layers[0], layers[1])
        self.out.weight = self.proj.weight if layers[0] == features else self.out.weight

    def forward(self, x):
        return self.out(self.proj(x.view(batch_size, -1)))

batch_size = 8 * 4
features = 2 ** 6
height = width = 9
layers = [features, 64]
kernel_size = 33
shape = (batch_size, height)

def get_inputs():
    return [torch.rand(batch_size, features, 1000)[:, :, 0]]

def get_init_inputs():
    return [features, layers]
'''


def _problem(tmp_path: Path, text: str = SIZES, **kw) -> Problem:
    path = tmp_path / "9_Sizes.py"
    path.write_text(text)
    return Problem(path, **kw)


def test_size_literals_and_which_are_dimensions() -> None:
    assert size_constants(SIZES) == [("batch_size", 32), ("features", 64), ("height=width", 9), ("layers[1]", 64),
                                     ("kernel_size", 33), ("get_inputs#0", 1000)]
    assert is_dimension("batch_size", 2) and not is_dimension("height", 9) and not is_dimension("kernel_size", 33)
    assert slug("50_conv_standard_2D__square_input") == "conv_standard_2d_square_input"


def test_a_shape_sets_sizes_and_derived_values_follow(tmp_path: Path) -> None:
    p = _problem(tmp_path)
    assert p.size_names == ["batch_size", "features", "layers[1]", "get_inputs#0"]
    assert p.default_shape == [32, 64, 64, 1000]
    small = p.module([4, 16, 8, 20])
    assert small.layers == [16, 8] and small.shape == (4, 9)  # derived from the sizes set
    assert p.init_inputs([4, 16, 8, 20]) == [16, [16, 8]]
    assert p.module() is p.module(p.default_shape)


def test_make_inputs_and_reference_with_tied_weights(tmp_path: Path) -> None:
    p = _problem(tmp_path, state_names=["proj.weight", "proj.bias", "out.bias"], known_shapes=[[4, 16, 16, 20]])
    args = p.make_inputs([4, 16, 16, 20], "float32", torch.Generator().manual_seed(0))
    x, w, b_in, b_out = args
    assert x.shape == (4, 16) and w.shape == (16, 16)
    y = p.reference(*args)
    expected = torch.nn.functional.linear(torch.nn.functional.linear(x, w, b_in), w, b_out)  # out.weight is proj.weight
    torch.testing.assert_close(y, expected)
    fresh = Problem(p.path, state_names=p.state_names, known_shapes=[[4, 16, 16, 20]])
    torch.testing.assert_close(fresh.reference(*args), expected)  # found from known_shapes, not make_inputs


def test_behaviour_refusals(tmp_path: Path) -> None:
    base = "import torch\nimport torch.nn as nn\nbatch_size = 16\n" \
           "def get_inputs():\n    return [torch.rand(batch_size, 16)]\ndef get_init_inputs():\n    return []\n"
    cases = {
        "randomness": "class Model(nn.Module):\n    def forward(self, x):\n        return x + torch.rand_like(x)\n",
        "stateful": "class Model(nn.Module):\n    def forward(self, x):\n        x.mul_(2)\n        return x\n",
        "non_tensor_output": "class Model(nn.Module):\n    def forward(self, x):\n        return [x, 1]\n",
    }
    for reason, model in cases.items():
        p = _problem(tmp_path, base + model)
        with pytest.raises(ProbeRefusal) as err:
            behaviour(p, p.default_shape)
        assert err.value.reason == reason, err.value.detail
    two = "class Model(nn.Module):\n    def forward(self, x):\n        return (x.sum(0), x * 2)\n"
    p = _problem(tmp_path, base + two)
    found = behaviour(p, p.default_shape)
    assert found.n_outputs == 2 and found.torch_ops == ["aten::mul", "aten::sum"]


def test_meta_facts_count_bytes_and_flops(tmp_path: Path) -> None:
    p = _problem(tmp_path)
    facts = meta_facts(p, p.default_shape)
    assert facts.flops == 2 * (2 * 32 * 64 * 64)  # two linears, counted by the flop counter
    assert facts.bytes(torch.float32, []) == 4 * (32 * 64 + 32 * 64)  # the input (a slice) and the output
    assert facts.bytes(torch.bfloat16, []) * 2 == facts.bytes(torch.float32, [])


def _facts(n: int) -> MetaFacts:
    return MetaFacts(inputs=[((n,), True, 4)], state={}, outputs=[((n,), True, 4)], flops=0, allocated=8 * n)


def test_scaling_halves_the_largest_until_the_budget_holds() -> None:
    assert halve(4095) == 2047 and halve(4096) == 2048 and halve(3) == 1
    measured = []

    def measure(shape):
        measured.append(list(shape))
        return shape[0] * shape[1] / 1e5  # ms

    got = scale_for_cpu(["batch_size", "dim"], [4096, 4095], lambda s: _facts(s[0] * s[1]), measure, budget_ms=5.0)
    assert got.fits and got.ms <= 5.0
    assert got.shape == [512, 511]
    assert all(m[0] * m[1] * 4 * 2 <= 64 * 2 ** 20 for m in measured)  # never ran beyond the byte cap


def test_scaling_freezes_a_size_the_problem_needs_and_tries_ties_together() -> None:
    def facts_at(shape):
        if shape[0] != shape[1]:
            raise RuntimeError("broadcast needs batch_size == dim")
        return _facts(shape[0] * shape[1])

    got = scale_for_cpu(["batch_size", "dim"], [8192, 8192], facts_at, lambda s: s[0] * s[1] / 1e5, budget_ms=5.0)
    assert got.shape[0] == got.shape[1] and got.fits
    def needs_dim_9(shape):
        if shape[1] < 9:
            raise RuntimeError("kernel larger than the input")
        return _facts(shape[0] * 10 ** 7)

    frozen = scale_for_cpu(["batch_size", "dim"], [64, 9], needs_dim_9, lambda s: 1e3, budget_ms=5.0)
    assert not frozen.fits and frozen.shape == [1, 9] and frozen.frozen == ["dim"]  # batch down to its floor
