"""A KernelBench problem as kernelgrade's reference contract needs it, at run time.

This module imports only torch and the standard library: `kernelgrade cases
import-kernelbench` copies it next to every generated reference.py (as kb_runtime.py),
because reference children run in the sandbox with nothing of harness/ on their path.
The importer uses the very same code to analyse a problem, so what was measured at
import is what runs when a case is graded.

A problem file (KernelBench's format) defines `Model(nn.Module)`, `get_inputs()`,
`get_init_inputs()` and module-level size constants (`batch_size = 4096`). Here:

* sizes: every int literal of a module-level assignment (`dim = 393216`,
  `depth, height, width = 24, 48, 48`, `layer_sizes = [400, 800]` as `layer_sizes[0]`, ...)
  and every int literal >= 16 inside get_inputs (`torch.rand(batch_size, 3, 224, 224)` as
  `get_inputs#0`, `get_inputs#1`) is a named size; a *shape* in the reference contract is
  the list of their values in source order. The file is compiled once with each such
  literal replaced by a lookup, and run once per shape in a module of its own, so derived
  constants (`input_shape = (dim,)`) and the class bodies see the sizes of that shape.
* make_inputs(shape, dtype, generator): get_inputs() under a seed drawn from the secret
  generator, created directly on the generator's device; then the module's parameters and
  buffers (STATE_NAMES order) drawn from Model(*get_init_inputs())'s own initialisation
  under a second seed. Floating tensors are cast to dtype, as KernelBench casts to its
  precision; integer and bool tensors keep their dtype.
* reference(*args): the Model of that shape (built once per argument signature), its
  parameters and buffers replaced by the arguments, called under torch.no_grad() in
  training mode (KernelBench's defaults).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import re
import types
from pathlib import Path
from typing import Any

import torch

SIZE_HOOK = "__kg_size__"
#: Int literals inside get_inputs at least this large are sizes (smaller ones are
#: channel counts such as 3, randint bounds such as 2, ...).
MIN_LITERAL_SIZE = 16


def _int_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


_INT_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
            ast.FloorDiv: lambda a, b: a // b, ast.Pow: lambda a, b: a ** b,
            ast.LShift: lambda a, b: a << b}


def int_expression(node: ast.AST) -> int | None:
    """The value of an expression made only of int literals and + - * // ** <<
    (`M = 16384 * 4`, `N = 2 ** 20`), else None."""
    if _int_literal(node):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = int_expression(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.BinOp) and type(node.op) in _INT_OPS:
        left, right = int_expression(node.left), int_expression(node.right)
        if left is None or right is None or (isinstance(node.op, ast.Pow) and not 0 <= right <= 64) \
                or (isinstance(node.op, ast.FloorDiv) and right == 0) \
                or (isinstance(node.op, ast.LShift) and not 0 <= right <= 64):
            return None
        return _INT_OPS[type(node.op)](left, right)
    return None


def _hook(name: str, node: ast.AST, value: int) -> ast.Call:
    call = ast.Call(func=ast.Name(id=SIZE_HOOK, ctx=ast.Load()),
                    args=[ast.Constant(value=name), ast.Constant(value=value)], keywords=[])
    return ast.copy_location(call, node)


class _Sizes:
    """Finds the size literals of a problem's AST and rewrites them into lookups."""

    def __init__(self) -> None:
        self.found: list[tuple[str, int]] = []

    def _value(self, name: str, node: ast.AST) -> ast.AST:
        value = int_expression(node)
        if value is not None:
            self.found.append((name, value))
            return _hook(name, node, value)
        if isinstance(node, (ast.Tuple, ast.List)):
            node.elts = [self._value(f"{name}[{i}]", e) for i, e in enumerate(node.elts)]
        return node

    def _assign(self, target: ast.AST, value: ast.AST) -> ast.AST:
        if isinstance(target, ast.Name):
            return self._value(target.id, value)
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
                and len(target.elts) == len(value.elts):
            value.elts = [self._assign(t, v) for t, v in zip(target.elts, value.elts)]
        return value

    def _get_inputs(self, func: ast.FunctionDef) -> None:
        count = 0

        class Literals(ast.NodeTransformer):
            def visit_Constant(inner, node: ast.Constant) -> ast.AST:  # noqa: N805
                nonlocal count
                if type(node.value) is int and node.value >= MIN_LITERAL_SIZE:
                    name = f"get_inputs#{count}"
                    count += 1
                    self.found.append((name, node.value))
                    return _hook(name, node, node.value)
                return node

        Literals().visit(func)

    def rewrite(self, tree: ast.Module) -> ast.Module:
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                stmt.value = self._assign(stmt.targets[0], stmt.value)
            elif isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
                # `height = width = 128`: one size, named after all its targets
                stmt.value = self._value("=".join(t.id for t in stmt.targets), stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and stmt.simple:
                stmt.value = self._assign(stmt.target, stmt.value)
            elif isinstance(stmt, ast.FunctionDef) and stmt.name == "get_inputs":
                self._get_inputs(stmt)
        return ast.fix_missing_locations(tree)


def size_constants(source: str) -> list[tuple[str, int]]:
    """(name, value) of every size literal of a problem, in source order."""
    sizes = _Sizes()
    sizes.rewrite(ast.parse(source))
    return sizes.found


#: Sizes that configure an operator rather than measure data: never part of a shape.
HYPERPARAMETER = re.compile(r"kernel|stride|pad|dilat|group|pool|head|patch|window", re.IGNORECASE)


def is_dimension(name: str, value: int) -> bool:
    """A size that measures data (batch, features, sequence, image side), so a shape may
    change it: at least 16 (or a batch size of at least 2) and not an operator setting."""
    big = value >= MIN_LITERAL_SIZE or ("batch" in name.lower() and value >= 2)
    return big and not HYPERPARAMETER.search(name)


def _float_dtype(dtype: str | torch.dtype) -> torch.dtype:
    return getattr(torch, dtype.removeprefix("torch.")) if isinstance(dtype, str) else dtype


def cast(value: Any, dtype: torch.dtype) -> Any:
    """Floating tensors to `dtype` (KernelBench's precision); everything else unchanged."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        return value.to(dtype) if value.is_floating_point() else value
    return value


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """The global RNG seeded for one draw on `device`, restored afterwards."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        with torch.device(device):
            yield


def signature(args: tuple) -> tuple:
    """What identifies a call's argument layout: shape, dtype and device of each tensor."""
    return tuple((tuple(a.shape), str(a.dtype), str(a.device)) if isinstance(a, torch.Tensor)
                 else type(a).__name__ for a in args)


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters then buffers by qualified name (shared tensors once)."""
    named = dict(model.named_parameters())
    named.update(dict(model.named_buffers()))
    return named


def state_slots(model: torch.nn.Module, names: list[str]) -> list[list[tuple[torch.nn.Module, str, str]]]:
    """For each state name, every (owning module, attribute, 'p'|'b') that holds that tensor:
    a weight tied between two modules is replaced in both."""
    where: dict[int, list[tuple[torch.nn.Module, str, str]]] = {}
    for qual, mod in model.named_modules(remove_duplicate=False):
        for attr, t in mod._parameters.items():
            if t is not None:
                where.setdefault(id(t), []).append((mod, attr, "p"))
        for attr, t in mod._buffers.items():
            if t is not None:
                where.setdefault(id(t), []).append((mod, attr, "b"))
    state = state_of(model)
    return [list(dict.fromkeys(where.get(id(state[n]), []))) for n in names]


class Problem:
    """One KernelBench problem file under kernelgrade's reference contract."""

    def __init__(self, path: str | Path, *, size_names: list[str] | None = None,
                 state_names: list[str] | None = None, known_shapes: list[list[int]] | None = None) -> None:
        self.path = Path(path)
        self.source = self.path.read_text(encoding="utf-8")
        sizes = _Sizes()
        tree = sizes.rewrite(ast.parse(self.source, filename=str(self.path)))
        self.sizes = dict(sizes.found)
        """Every size literal; those not in size_names keep their value."""
        if size_names is None:
            size_names = [n for n, v in sizes.found if is_dimension(n, v)]
        size_names = list(dict.fromkeys(size_names))
        unknown = [n for n in size_names if n not in self.sizes]
        if unknown:
            raise ValueError(f"{self.path.name}: no size named {unknown[0]!r} (the file changed since the import?)")
        self.size_names = list(size_names)
        """The sizes a shape sets, in order."""
        self.default_shape = [self.sizes[n] for n in self.size_names]
        self._code = compile(tree, str(self.path), "exec")
        self.state_names = list(state_names or [])
        self.known_shapes = [list(s) for s in (known_shapes or [])]
        self._modules: dict[tuple[int, ...], types.ModuleType] = {}
        self._instances: dict[tuple, tuple[torch.nn.Module, list, int]] = {}
        self._seen: dict[tuple, tuple[int, ...]] = {}

    # --- the problem's module at one shape ------------------------------------------------

    def module(self, shape: list[int] | tuple[int, ...] | None = None) -> types.ModuleType:
        shape = tuple(self.default_shape if shape is None else shape)
        if len(shape) != len(self.size_names):
            raise ValueError(f"{self.path.name}: shape {list(shape)} has {len(shape)} sizes, the problem "
                             f"has {len(self.size_names)} ({', '.join(self.size_names) or 'none'})")
        mod = self._modules.get(shape)
        if mod is None:
            values = dict(zip(self.size_names, shape))
            tag = hashlib.sha256(f"{self.path}:{shape}".encode()).hexdigest()[:10]
            mod = types.ModuleType(f"kg_kernelbench_{tag}")
            mod.__file__ = str(self.path)
            mod.__dict__[SIZE_HOOK] = lambda name, default: values.get(name, default)
            exec(self._code, mod.__dict__)  # the problem file itself (not model-written code)
            self._modules[shape] = mod
        return mod

    def init_inputs(self, shape=None) -> list:
        return list(self.module(shape).get_init_inputs())

    def build_model(self, shape, device: torch.device | str = "cpu", seed: int = 0) -> torch.nn.Module:
        mod = self.module(shape)
        init = self.init_inputs(shape)
        with seeded(seed, torch.device(device)), torch.no_grad():
            return mod.Model(*init)

    def raw_inputs(self, shape, device: torch.device | str = "cpu", seed: int = 0) -> list:
        mod = self.module(shape)
        with seeded(seed, torch.device(device)):
            return list(mod.get_inputs())

    # --- the reference contract -----------------------------------------------------------

    def make_inputs(self, shape, dtype, generator: torch.Generator) -> tuple:
        dt, dev = _float_dtype(dtype), generator.device
        seeds = torch.randint(0, 2 ** 62, (2,), generator=generator, device=dev).tolist()
        inputs = [cast(v, dt) for v in self.raw_inputs(shape, dev, int(seeds[0]))]
        state: list = []
        if self.state_names:
            model = self.build_model(shape, dev, int(seeds[1]))
            named = state_of(model)
            state = [cast(named[n], dt).clone() for n in self.state_names]
        args = tuple(inputs + state)
        self._seen[signature(args)] = tuple(shape)
        return args

    def _shape_for(self, args: tuple) -> tuple[int, ...]:
        sig = signature(args)
        if sig in self._seen:
            return self._seen[sig]
        want = [tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args]
        for shape in [*self.known_shapes, self.default_shape]:
            if self.arg_shapes(shape) == want:
                return tuple(shape)
        raise ValueError(f"{self.path.name}: no known shape gives arguments of shapes {want}")

    def arg_shapes(self, shape) -> list:
        """The shapes make_inputs gives at `shape`, found on the meta device (no memory)."""
        inputs = self.raw_inputs(shape, "meta")
        named = state_of(self.build_model(shape, "meta")) if self.state_names else {}
        values = inputs + [named[n] for n in self.state_names]
        return [tuple(v.shape) if isinstance(v, torch.Tensor) else None for v in values]

    def instance(self, args: tuple) -> tuple[torch.nn.Module, list, int]:
        sig = signature(args)
        inst = self._instances.get(sig)
        if inst is None:
            shape = self._shape_for(args)
            device = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
            floats = [a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
            model = self.build_model(shape, device)
            if floats:
                model = model.to(dtype=floats[0])
            n_inputs = len(args) - len(self.state_names)
            inst = (model, state_slots(model, self.state_names), n_inputs)
            self._instances[sig] = inst
        return inst

    def reference(self, *args: Any) -> Any:
        model, slots, n_inputs = self.instance(args)
        for holders, value in zip(slots, args[n_inputs:]):
            for owner, attr, kind in holders:
                (owner._parameters if kind == "p" else owner._buffers)[attr] = value
        with torch.no_grad():
            return model(*args[:n_inputs])


def slug(stem: str) -> str:
    """'19_ReLU' -> 'relu', '50_conv_standard_2D__square_input' -> 'conv_standard_2d_square_input'."""
    text = re.sub(r"^\d+_", "", stem).lower()
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


__all__ = ["HYPERPARAMETER", "MIN_LITERAL_SIZE", "Problem", "cast", "is_dimension", "seeded", "signature",
           "size_constants", "slug", "state_of", "state_slots"]
