"""The `scan` check: read a kernel project's sources for known tricks (REFERENCE.md §7),
without compiling or running anything.

It complements the dynamic rules of the run check (sandbox/judge.py): a trick that the
sources show plainly (patching torch.allclose or the timer, walking frames to reach the
checker, reading files or the environment, calling the op under test) fails here before
any of the project's code runs. Many cheats are visible only when the code runs (a kernel
that writes zeros, skips rows or mutates its input); those are the run check's job.

What is scanned: the C/C++/CUDA sources listed in build.toml (with the project headers they
#include) and every .py file of the Python package torch-ext/<name>/. Comments are removed
first, so prose that names a trick is not a finding.
- C/C++/CUDA: regexes on the text with comments blanked, and string literals blanked
  unless a rule needs them (`strings=True`, e.g. "aten::softmax" handed to the dispatcher).
- Python: the file is parsed (never imported) into events, one per line of the form
  "<kind> <dotted name>" with import aliases resolved (`import torch.nn.functional as F`
  makes `F.softmax(x)` the event "call torch.nn.functional.softmax"); rules are regexes on
  those events. Kinds: import, assign (an attribute or item assigned or deleted), setattr,
  call, ref (a name or attribute read), arg (a call's first argument when it is a string),
  string (other string constants; docstrings are left out), global, module-state (a
  module-level dict/list/set), default-mutable, and "call @" for the matmul operator.
  Names defined by the package itself, and its relative imports, start with ".".

Severity: error only for tricks with no legitimate use in a kernel answer (they fail the
check, and `run` depends on `scan`); warning for things with honest uses (extra streams,
static state, caches, PyTorch compute ops) that a reviewer should look at.
"""

from __future__ import annotations

import ast
import bisect
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from harness.checks.base import CheckContext
from harness.errors import UserError
from harness.project import ProjectInfo, read_project
from harness.reference import reference_dir, resolve_reference_path
from harness.results import CheckResult, Finding, Severity
from sandbox.aten_ops import TRIVIAL_ATEN

log = logging.getLogger(__name__)

NAME = "scan"
C_EXTS = {".cu", ".cuh", ".cpp", ".cc", ".cxx", ".c", ".h", ".hpp", ".hh", ".hxx", ".inl"}
MAX_FILE_BYTES = 2_000_000
MAX_FINDINGS = 60
_SHOWN_CODE = 110


@dataclass(frozen=True)
class Rule:
    """One pattern of the table. `lang` "cpp" matches C/C++/CUDA text; "py" matches events."""

    family: str
    """Finding family, shown first in the reason (monkeypatch, frame_inspection, ...)."""
    lang: str
    severity: Severity
    pattern: str
    reason: str
    strings: bool = False
    """cpp only: match on the text with string literals kept."""
    ops_only: bool = False
    """The match's `name` group must look like a PyTorch compute op: lower snake case and
    not an allocation/view/copy op (sandbox.aten_ops.TRIVIAL_ATEN, shared with the run check) or a helper in NOT_COMPUTE."""


# Python-side names under torch that create tensors or configure, not compute.
NOT_COMPUTE = frozenset("""
tensor as_tensor asarray from_numpy from_dlpack is_tensor is_storage no_grad enable_grad inference_mode
set_grad_enabled is_grad_enabled device dtype finfo iinfo get_default_dtype set_default_dtype promote_types
can_cast manual_seed seed initial_seed is_floating_point is_complex broadcast_shapes compile jit cuda library
ops get_device use_deterministic_algorithms set_float32_matmul_precision get_float32_matmul_precision
is_inference_mode_enabled _assert sym_int sym_float arange linspace logspace eye rand randn randint randperm
empty_like zeros_like ones_like full_like get_num_threads set_num_threads parallel_for parallel_reduce
get_thread_num in_parallel_region init_num_threads get_parallel_info intraop_default_num_threads
load save from_file
""".split())

# Tensor methods that compute (not view, copy or allocate).
_PY_COMPUTE_METHODS = (
    "abs|add|addmm|baddbmm|bmm|clamp|cos|cumsum|div|einsum|erf|exp|exp2|gelu|layer_norm|linear|log|"
    "log_softmax|matmul|max|mean|min|mm|mul|neg|norm|pow|prod|reciprocal|relu|rms_norm|rsqrt|sigmoid|"
    "silu|sin|softmax|sqrt|square|std|sub|sum|tanh|var")
# In C++ the same names exist on at::vec::Vectorized (exp, sqrt, ...); keep tensor-only ones.
_CPP_COMPUTE_METHODS = (
    "addmm|baddbmm|bmm|cumsum|einsum|gelu|layer_norm|linear|log_softmax|matmul|mean|mm|norm|prod|"
    "rms_norm|silu|softmax|sum|var")
_TIMER_FUNCS = (r"cudaEvent\w+|cudaDeviceSynchronize|cudaStreamSynchronize|cudaStreamWaitEvent|"
                r"cudaLaunchKernel|cudaMemcpy\w*|cudaGetLastError|cuEvent\w+|cuLaunchKernel|"
                r"cuStreamSynchronize|cuCtxSynchronize|clock_gettime|gettimeofday|dlsym")
# Assignments to these torch sub-modules are settings, not patches.
_TORCH_SETTINGS = r"backends\.|_dynamo\.config\.|_inductor\.config\.|_functorch\.config\."

RULES: tuple[Rule, ...] = (
    # --- Python package: errors ---------------------------------------------------------
    Rule("monkeypatch", "py", "error", rf"^assign torch\.(?!{_TORCH_SETTINGS})\S+",
         "replaces a torch attribute (monkeypatches torch, its checker or its timer)"),
    Rule("monkeypatch", "py", "error",
         r"^assign (time|timeit|builtins|__builtins__|triton|numpy|sys|gc|inspect|importlib|pytest|unittest)\b\S*",
         "replaces part of a standard or test module (the timer, the checker, a builtin)"),
    Rule("monkeypatch", "py", "error", r"^setattr (torch|time|timeit|builtins|triton|numpy|sys|gc|inspect)\b\S*",
         "setattr on a torch, timer or standard module (monkeypatching)"),
    Rule("monkeypatch", "py", "error",
         r"^arg torch\.library\.(Library|impl|register_kernel|define|_scoped_library) aten\b",
         "registers its own kernel in the aten namespace (replaces PyTorch's op)"),
    Rule("frame_inspection", "py", "error",
         r"^(call|ref) (sys\._getframe|sys\._current_frames|sys\.settrace|sys\.setprofile|"
         r"inspect\.(stack|currentframe|getouterframes|getinnerframes|trace|getframeinfo)|"
         r"gc\.(get_objects|get_referrers|get_referents)|threading\.(settrace|setprofile)|"
         r"traceback\.(extract_stack|walk_stack))$",
         "inspects the call stack or the heap (reaches the checker's data)"),
    Rule("frame_inspection", "py", "error", r"^ref \S+\.(f_back|f_locals|f_globals|tb_frame|gi_frame|__globals__)$",
         "reads a frame's or function's variables (reaches the checker's data)"),
    Rule("reads_data", "py", "error",
         r"^call ((builtins|io|os|codecs)\.)?open$|^call \S+\.(read_text|read_bytes)$",
         "opens files (no kernel wrapper needs to; the checker's and the reference's data are files)"),
    Rule("reads_data", "py", "error",
         r"^call (torch\.load|torch\.from_file|numpy\.(load|fromfile|memmap|loadtxt|genfromtxt)|"
         r"pickle\.loads?|marshal\.loads?|shelve\.open|json\.load|mmap\.mmap)$",
         "loads data from a file (saved outputs are not a computed result)"),
    Rule("reads_data", "py", "error",
         r"^call (glob\.i?glob|os\.(listdir|scandir|walk)|\S+\.(glob|rglob|iterdir))$",
         "lists files (looks for saved reference outputs or the checker's data)"),
    Rule("reads_data", "py", "error", r"^ref os\.(environ|environb|getenv|getenvb|putenv|unsetenv)\b",
         "reads or changes the environment (the checker's settings and paths)"),
    Rule("reads_data", "py", "error", r"^string .*/proc/",
         "names /proc (another process's memory or files)"),
    Rule("other_process", "py", "error",
         r"^(import|ref) (subprocess|pty|socket|urllib|http|requests|ftplib)\b|"
         r"^ref os\.(system|popen|fork|forkpty|kill|exec\w*|spawn\w*|posix_spawn\w*)$",
         "runs or signals other processes or opens connections (no kernel needs to)"),
    Rule("hidden_code", "py", "error", r"^call (builtins\.)?(exec|eval)$",
         "runs code built at run time (hidden from review)"),
    # --- Python package: warnings -------------------------------------------------------
    Rule("global_setting", "py", "warning", rf"^assign torch\.({_TORCH_SETTINGS})\S*",
         "changes a global torch setting"),
    Rule("dynamic_import", "py", "warning",
         r"^call (importlib\.import_module|importlib\.reload|builtins\.__import__|__import__)$|^ref sys\.modules\b",
         "imports or reaches modules by computed name (a way to patch what it should not)"),
    Rule("raw_memory", "py", "warning", r"^(import|ref) ctypes\b", "uses ctypes (raw memory access)"),
    Rule("stream", "py", "warning", r"^call torch\.cuda\.(Stream|stream|set_stream|ExternalStream|StreamContext)$",
         "uses another CUDA stream (work the timer may miss unless it is synchronised)"),
    Rule("thread", "py", "warning",
         r"^call (threading\.(Thread|Timer)|_thread\.start_new_thread|concurrent\.futures\.\S+|multiprocessing\.\S+)$",
         "runs work on another thread or process (outside the timed call)"),
    Rule("cache", "py", "warning", r"^(call|ref) functools\.(lru_cache|cache|cached_property)$",
         "caches results across calls (fresh inputs must give fresh results)"),
    Rule("cache", "py", "warning", r"^(module-state|global|default-mutable) \S+",
         "keeps mutable state across calls (a result cache?)"),
    Rule("cache", "py", "warning", r"^call \S+\.data_ptr$",
         "uses a tensor's address (a cache keyed on the input pointer?)"),
    Rule("pytorch_compute", "py", "warning",
         r"^call torch\.(nn\.functional\.|special\.|linalg\.|fft\.)?(?P<name>\w+)$",
         "computes with a PyTorch op, not its own kernel", ops_only=True),
    Rule("pytorch_compute", "py", "warning", rf"^call [^.\s]\S*\.(?P<name>{_PY_COMPUTE_METHODS})$",
         "computes with a PyTorch tensor method, not its own kernel"),
    Rule("pytorch_compute", "py", "warning", r"^call @$",
         "computes with the @ operator (torch.matmul), not its own kernel"),
    # --- C/C++/CUDA: errors -------------------------------------------------------------
    Rule("monkeypatch", "cpp", "error",
         rf"\b(?:cudaError_t|cudaError|CUresult|void|int|float|double|auto)\s+(?:CUDARTAPI\s+|__host__\s+)*"
         rf"(?P<name>{_TIMER_FUNCS})\s*\([^;{{}}()]*\)\s*(?:noexcept\s*)?\{{",
         "defines a CUDA runtime/driver or clock function (interposes on what the harness times with)"),
    Rule("monkeypatch", "cpp", "error", r"\bTORCH_LIBRARY(?:_IMPL|_FRAGMENT)?\s*\(\s*aten\b",
         "registers kernels in the aten namespace (replaces PyTorch's own ops in the process)"),
    Rule("monkeypatch", "cpp", "error", r"\.attr\s*\(\s*\"[^\"]*\"\s*\)\s*=(?!=)",
         "sets an attribute of a Python object from C++ (monkeypatching)", strings=True),
    Rule("frame_inspection", "cpp", "error",
         r"\b(?:PyRun_\w+|Py_CompileString\w*|PyEval_GetFrame|PyEval_GetGlobals|PyEval_GetLocals|"
         r"PyThreadState_GetFrame|PyFrame_\w+|PyEval_SetTrace|PyEval_SetProfile)\s*\(|"
         r"\bpy(?:bind11)?::(?:exec|eval|eval_file)\s*\(",
         "runs Python or inspects Python frames from C++ (reaches the checker)"),
    Rule("other_process", "cpp", "error",
         r"(?<![\w.>])(?:std::)?(?:system|popen|fork|vfork|execv|execvp|execve|execl|execlp|posix_spawn|"
         r"ptrace|process_vm_readv|process_vm_writev)\s*\(",
         "runs, reads or signals other processes (no kernel needs to)"),
    Rule("reads_data", "cpp", "error", r"\"[^\"\n]*/proc/", "names /proc (another process's memory or files)",
         strings=True),
    # --- C/C++/CUDA: warnings -----------------------------------------------------------
    Rule("reads_data", "cpp", "warning",
         r"(?<![\w.>])(?:fopen|freopen|open|openat|mmap|dlopen|getenv|secure_getenv)\s*\(|\bstd::[io]?fstream\b",
         "reads files, the environment or other libraries (no kernel needs to)"),
    Rule("python_from_cpp", "cpp", "warning", r"\bpy(?:bind11)?::module_?::import\s*\(|\bPyImport_\w+\s*\(",
         "imports a Python module from C++"),
    Rule("stream", "cpp", "warning",
         r"\b(?:cudaStreamCreate\w*|cuStreamCreate\w*|getStreamFromPool)\s*\(|\bcudaStreamNonBlocking\b",
         "creates another CUDA stream (work the timer may miss unless it is synchronised)"),
    Rule("thread", "cpp", "warning", r"\bstd::(?:thread|jthread|async)\b|\bpthread_create\s*\(",
         "runs work on another thread (outside the timed call)"),
    Rule("cache", "cpp", "warning",
         r"\bstatic\s+(?:thread_local\s+)?(?:const\s+)?(?:(?:at|torch|std|c10)::)*"
         r"(?:Tensor\b|optional\s*<\s*(?:(?:at|torch)::)?Tensor|vector\s*<\s*(?:(?:at|torch)::)?Tensor)",
         "a static tensor outlives the call (a result cache?)"),
    Rule("cache", "cpp", "warning",
         r"\bstatic\s+(?:thread_local\s+)?(?:const\s+)?(?:std::)?(?:unordered_)?(?:map|set|multimap)\s*<",
         "a static map or set keeps state across calls (a cache keyed on shape or pointer?)"),
    Rule("cache", "cpp", "warning",
         r"(?m)^(?:(?:at|torch)::)?Tensor\s+\w+\s*(?:;|=|\{)|^(?:std::)?(?:unordered_)?map\s*<",
         "a global tensor or map keeps state across calls (a result cache?)"),
    Rule("cache", "cpp", "warning",
         r"\bstatic\s+(?:thread_local\s+)?(?:const\s+)?[\w:<>]+\s*\*\s*\w+\s*(?:=|;)|\bstatic\s+(?:const\s+)?u?intptr_t\b",
         "a static pointer remembers an address across calls"),
    Rule("cache", "cpp", "warning", r"(?<![\w])__(?:device|managed)__\s+(?!__forceinline__|inline|__noinline__)[^;{}()]*;",
         "a __device__ global variable persists across launches (state kept between calls?)"),
    Rule("cache", "cpp", "warning",
         r"data_ptr\s*(?:<[^<>()]*>)?\s*\(\s*\)\s*(?:==|!=)|(?:==|!=)\s*[\w.\->]+data_ptr\b|"
         r"make_(?:tuple|pair)\s*\([^;]*\b(?:numel|sizes?|data_ptr|scalar_type)\s*\(",
         "compares or builds a key from a tensor's address or shape (a cache key?)"),
    Rule("pytorch_compute", "cpp", "warning",
         r"\b(?:at|torch)::(?:native::|_ops::)?(?P<name>[a-z_]\w*)\s*(?:<[^<>;()]*>)?\s*\(",
         "computes with a PyTorch op, not its own kernel", ops_only=True),
    Rule("pytorch_compute", "cpp", "warning", rf"(?:\.|->)\s*(?P<name>{_CPP_COMPUTE_METHODS})\s*\(",
         "computes with a PyTorch tensor method, not its own kernel"),
)

#: Ops each reference op is built from: calling them is calling the op under test.
#: (kernels_reference/<op>/reference.py may list more in TORCH_OPS.)
OP_ALIASES: dict[str, tuple[str, ...]] = {
    "matmul": ("mm", "bmm", "addmm"),
    "gelu_tanh": ("gelu",),
    "geglu": ("gelu",),
    "layernorm_adaln": ("layer_norm", "native_layer_norm"),
    "residual_rmsnorm": ("rms_norm",),
    "rmsnorm": ("rms_norm",),
}
_REPLACED_REASON = "calls the PyTorch op it replaces"


def _loose(name: str) -> str:
    """A regex for `name` ignoring case and underscores, as sandbox.judge compares op names."""
    letters = [c for c in name.split("::")[-1].split(".")[0] if c != "_"]
    return "(?i:_*" + "_*".join(re.escape(c) for c in letters) + "_*)"


def replaced_rules(names: list[str]) -> list[Rule]:
    """The error rules for calling the op under test, from its names (op, API, TORCH_OPS)."""
    bases = sorted({n.split("::")[-1].split(".")[0] for n in names if n and n.strip("_")})
    if not bases:
        return []
    alt = "(?:" + "|".join(_loose(b) for b in bases) + ")"
    rules = [
        Rule("torch_op", "py", "error", rf"^(call|ref) (?!\.)(?!self\.)(?!torch\.ops\.(?!aten\.))\S*\.{alt}$",
             _REPLACED_REASON),
        Rule("torch_op", "py", "error", rf"^(string|arg \S+) aten::{alt}(\.\w+)?$", _REPLACED_REASON),
        Rule("torch_op", "cpp", "error", rf"\b(?:at|torch|aten|c10)::(?:\w+::)*{alt}\b", _REPLACED_REASON,
             strings=True),
        Rule("torch_op", "cpp", "error", rf"(?:\.|->)\s*{alt}\s*\(", _REPLACED_REASON),
    ]
    if any(re.fullmatch(_loose(b), "matmul") for b in bases):
        rules.append(Rule("torch_op", "py", "error", r"^call @$", _REPLACED_REASON + " (the @ operator)"))
    return rules


# --- C/C++/CUDA text ------------------------------------------------------------------

def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def strip_c(src: str) -> tuple[str, str]:
    """(code, code_with_strings): comments blanked in both (newlines kept, so offsets and
    line numbers still match the source); string and char literal contents blanked in `code`."""
    code: list[str] = []
    full: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            code.append(_blank(src[i:j]))
            full.append(_blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            code.append(_blank(src[i:j]))
            full.append(_blank(src[i:j]))
            i = j
        elif c == '"' and i > 0 and src[i - 1] == "R" and (m := re.match(r'"([^()\\\s]{0,16})\(', src[i:])):
            end = src.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            code.append('"' + _blank(src[i + 1:j - 1]) + '"')
            full.append(src[i:j])
            i = j
        elif c == '"' or (c == "'" and not _digit_separator(src, i)):
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            code.append(c + _blank(src[i + 1:j - 1]) + src[j - 1:j] if j - i >= 2 else src[i:j])
            full.append(src[i:j])
            i = j
        else:
            j = i + 1
            while j < n and src[j] not in "/\"'":
                j += 1
            code.append(src[i:j])
            full.append(src[i:j])
            i = j
    return "".join(code), "".join(full)


def _digit_separator(src: str, i: int) -> bool:
    """C++14 1'000'000: a quote inside a number literal."""
    j = i
    while j > 0 and (src[j - 1].isalnum() or src[j - 1] in "_'"):
        j -= 1
    return j < i and src[j].isdigit()


# --- Python events --------------------------------------------------------------------

_MUTABLE_CALLS = {"dict", "list", "set", "collections.OrderedDict", "collections.defaultdict",
                  "collections.deque", "weakref.WeakValueDictionary", "weakref.WeakKeyDictionary"}


class _PyEvents(ast.NodeVisitor):
    """Collect (line, "kind name") events from a parsed Python file."""

    def __init__(self, tree: ast.Module) -> None:
        self.events: list[tuple[int, str]] = []
        self.alias: dict[str, str] = {}
        # Names the file defines itself: `rms_norm(...)` is the package's function, not torch's.
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.alias.setdefault(node.name, "." + node.name)
        self.docstrings = {id(node.value) for node in ast.walk(tree)
                           if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
        self.module_body = {id(node) for node in tree.body}

    def emit(self, node: ast.AST, kind: str, name: str) -> None:
        self.events.append((getattr(node, "lineno", 0), f"{kind} {name}"))

    def dotted(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.alias.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            return f"{self.dotted(node.value)}.{node.attr}"
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "getattr" and node.args:
                attr = node.args[1] if len(node.args) > 1 else None
                name = attr.value if isinstance(attr, ast.Constant) and isinstance(attr.value, str) else "?"
                return f"{self.dotted(node.args[0])}.{name}"
            return f"{self.dotted(node.func)}()"
        if isinstance(node, ast.Subscript):
            return f"{self.dotted(node.value)}[]"
        return "?"

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.emit(node, "import", a.name)
            if a.asname:
                self.alias[a.asname] = a.name
            else:
                head = a.name.split(".")[0]
                self.alias[head] = head

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        for a in node.names:
            full = module + a.name if module.endswith(".") else f"{module}.{a.name}"
            self.emit(node, "import", full)
            self.alias[a.asname or a.name] = full

    def _targets(self, node: ast.AST, targets: list[ast.expr], value: ast.expr | None) -> None:
        for target in targets:
            for t in ast.walk(target) if isinstance(target, (ast.Tuple, ast.List)) else [target]:
                if isinstance(t, (ast.Attribute, ast.Subscript)):
                    self.emit(node, "assign", self.dotted(t))
                elif isinstance(t, ast.Name) and id(node) in self.module_body and _is_mutable(value, self) \
                        and not (t.id.startswith("__") and t.id.endswith("__")):
                    self.emit(node, "module-state", t.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node, node.targets, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets(node, [node.target], None)
        if isinstance(node.op, ast.MatMult):
            self.emit(node, "call", "@")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets(node, [node.target], node.value)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node, node.targets, None)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self.emit(node, "global", name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
            if _is_mutable(default, self):
                self.emit(default, "default-mutable", node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        func = self.dotted(node.func)
        self.emit(node, "call", func)
        if func == "getattr":  # getattr(F, "softmax") reads F.softmax
            self.emit(node, "ref", self.dotted(node))
        if func == "setattr" and node.args:
            attr = node.args[1] if len(node.args) > 1 else None
            name = attr.value if isinstance(attr, ast.Constant) and isinstance(attr.value, str) else "?"
            self.emit(node, "setattr", f"{self.dotted(node.args[0])}.{name}")
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self.emit(node, "arg", f"{func} {_one_line(node.args[0].value)}")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult):
            self.emit(node, "call", "@")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self.emit(node, "ref", self.dotted(node))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.emit(node, "ref", self.dotted(node))

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.docstrings:
            self.emit(node, "string", _one_line(node.value))


def _is_mutable(value: ast.expr | None, scan: _PyEvents) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and scan.dotted(value.func) in _MUTABLE_CALLS


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def python_events(src: str) -> list[tuple[int, str]]:
    """(line, "kind name") events of a Python source; SyntaxError propagates."""
    tree = ast.parse(src)
    visitor = _PyEvents(tree)
    visitor.visit(tree)
    return visitor.events


# --- Matching ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    rule: Rule
    path: str
    """Relative to the project root."""
    line: int
    matched: str
    code: str
    """The source line, stripped and shortened."""

    def finding(self) -> Finding:
        return Finding(severity=self.rule.severity, key=f"{self.path}:{self.line}",
                       reason=f"{self.rule.family}: {self.rule.reason} ({self.matched}): `{self.code}`")


def _compute_op(name: str | None) -> bool:
    return bool(name) and name == name.lower() and name not in TRIVIAL_ATEN \
        and name.lower() not in NOT_COMPUTE and not name.startswith("__")


def _shown(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= _SHOWN_CODE else line[:_SHOWN_CODE - 3] + "..."


def scan_cpp(src: str, rel: str, rules: list[Rule]) -> list[Hit]:
    code, full = strip_c(src)
    starts = [0] + [m.end() for m in re.finditer("\n", src)]
    lines = src.splitlines() or [""]
    hits: list[Hit] = []
    for rule in rules:
        if rule.lang != "cpp":
            continue
        for m in re.finditer(rule.pattern, full if rule.strings else code):
            name = m.groupdict().get("name")
            if rule.ops_only and not _compute_op(name):
                continue
            line = bisect.bisect_right(starts, m.start())
            matched = _shown(full[m.start():m.end()])
            hits.append(Hit(rule, rel, line, matched, _shown(lines[min(line, len(lines)) - 1])))
    return hits


def scan_python(src: str, rel: str, rules: list[Rule], events: list[tuple[int, str]]) -> list[Hit]:
    lines = src.splitlines() or [""]
    hits: list[Hit] = []
    for rule in rules:
        if rule.lang != "py":
            continue
        pattern = re.compile(rule.pattern)
        for line, event in events:
            m = pattern.search(event)
            if m is None:
                continue
            if rule.ops_only and not _compute_op(m.groupdict().get("name")):
                continue
            hits.append(Hit(rule, rel, line, event, _shown(lines[max(line, 1) - 1])))
    return hits


# --- The project ------------------------------------------------------------------------

_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.MULTILINE)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def project_sources(info: ProjectInfo) -> tuple[list[Path], list[Path]]:
    """(C/C++/CUDA files, Python files): build.toml's sources with the project headers they
    include, and the Python package. Only files inside the project, sorted."""
    root = info.root
    listed: list[Path] = []
    for entry in [*info.torch_src, *(s for k in info.kernels for s in k.src)]:
        matches = sorted(root.glob(entry)) if any(ch in entry for ch in "*?[") else [root / entry]
        listed.extend(p for p in matches if p.is_file() and _inside(p, root))
    c_files = [p for p in listed if p.suffix in C_EXTS]
    py_files = [p for p in listed if p.suffix == ".py"]
    seen = {p.resolve() for p in c_files}
    queue = list(c_files)
    while queue:  # project headers reached by #include "...": code that is compiled though unlisted
        current = queue.pop()
        try:
            text = current.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for inc in _INCLUDE_RE.findall(strip_c(text)[1]):
            for base in (current.parent, root):
                cand = base / inc
                if cand.is_file() and _inside(cand, root) and cand.resolve() not in seen:
                    seen.add(cand.resolve())
                    c_files.append(cand)
                    queue.append(cand)
                    break
    pkg = info.python_package_dir
    if pkg.is_dir():
        py_files.extend(p for p in pkg.rglob("*.py") if _inside(p, root))
    unique = lambda files: sorted({p.resolve(): p for p in files}.values())  # noqa: E731
    return unique(c_files), unique(py_files)


def _all_sources(root: Path) -> tuple[list[Path], list[Path]]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and _inside(p, root)]
    return [p for p in files if p.suffix in C_EXTS], [p for p in files if p.suffix == ".py"]


def _reference_names(path: Path | None) -> list[str]:
    """API and TORCH_OPS read from a reference.py's literals (it is never imported here: a
    project's own reference.py is untrusted), plus its op folder for kernels_reference/."""
    if path is None:
        return []
    names: list[str] = []
    if path.resolve().parent.parent == reference_dir().resolve():
        names.append(path.resolve().parent.name)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return names
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("API", "TORCH_OPS"):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            names.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return names


def replaced_names(ctx: CheckContext) -> tuple[list[str], str]:
    """The op under test's names, and where they came from ('' when none is known)."""
    spec = ctx.case.kernel if ctx.case is not None else None
    names: list[str] = [spec.op, spec.api_name] if spec is not None else []
    op = spec.op if spec is not None else getattr(ctx.options, "op", None)
    try:
        # As the run check finds it; a reference.py in a model's answer is never used.
        ref = resolve_reference_path(explicit=ctx.options.reference, op=op,
                                     project_dir=ctx.project_dir if ctx.case is None else None)
    except UserError:
        ref = None  # a case op without kernels_reference/<op>: the case's names still apply
    names.extend(_reference_names(ref))
    for name in list(names):
        names.extend(OP_ALIASES.get(name, ()))
    names = list(dict.fromkeys(n for n in names if n))
    source = str(ref) if ref is not None else ("the case" if spec is not None else "")
    return names, source


def scan_project(root: Path, replaced: list[str]) -> tuple[list[Hit], list[Finding], int]:
    """(hits, notes, files scanned) for the project at `root`."""
    notes: list[Finding] = []
    try:
        info = read_project(root)
        c_files, py_files = project_sources(info)
        package: Path | None = info.python_package_dir
        has_kernels = bool(info.kernels)
    except UserError as err:
        notes.append(Finding(severity="note", key="build.toml",
                             reason=f"unreadable ({err}); every source file in the project was scanned"))
        c_files, py_files = _all_sources(root)
        package, has_kernels = None, False
    rules = [*RULES, *replaced_rules(replaced)]
    hits: list[Hit] = []
    uses_own_ops = False
    for path in [*c_files, *py_files]:
        rel = path.relative_to(root).as_posix() if _inside(path, root) else path.name
        if path.stat().st_size > MAX_FILE_BYTES:
            notes.append(Finding(severity="warning", key=rel, reason=f"over {MAX_FILE_BYTES} bytes: not scanned"))
            continue
        src = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix in C_EXTS:
            hits.extend(scan_cpp(src, rel, rules))
            continue
        try:
            events = python_events(src)
        except SyntaxError as err:
            notes.append(Finding(severity="warning", key=f"{rel}:{err.lineno or 0}",
                                 reason=f"not valid Python ({err.msg}): not scanned"))
            continue
        hits.extend(scan_python(src, rel, rules, events))
        uses_own_ops |= any(re.match(r"(call|ref) (\._ops\b|torch\.ops\.(?!aten\b))", e) for _, e in events)
    if has_kernels and package is not None and package.is_dir() and py_files and not uses_own_ops:
        rel = package.relative_to(root).as_posix()
        notes.append(Finding(severity="warning", key=rel,
                             reason="no_own_code: the Python package never uses its compiled ops "
                                    "(ops from ._ops): its API does not run the project's kernels"))
    return _dedupe(hits), notes, len(c_files) + len(py_files)


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """One hit per (family, file, line), the most severe first; errors before warnings."""
    rank = {"error": 0, "warning": 1, "note": 2}
    # A line that calls the op under test needs no second finding saying it computes in PyTorch.
    replaced_at = {(h.path, h.line) for h in hits if h.rule.family == "torch_op"}
    hits = [h for h in hits if not (h.rule.family == "pytorch_compute" and (h.path, h.line) in replaced_at)]
    best: dict[tuple[str, str, int], Hit] = {}
    for hit in hits:
        key = (hit.rule.family, hit.path, hit.line)
        if key not in best or rank[hit.rule.severity] < rank[best[key].rule.severity]:
            best[key] = hit
    return sorted(best.values(), key=lambda h: (rank[h.rule.severity], h.path, h.line, h.rule.family))


def check_scan(ctx: CheckContext) -> CheckResult:
    if ctx.project_dir is None or not (ctx.project_dir / "build.toml").is_file():
        return CheckResult.skip(NAME, "no project to scan")
    replaced, source = replaced_names(ctx)
    hits, notes, n_files = scan_project(ctx.project_dir, replaced)
    if not replaced:
        notes.append(Finding(severity="note", key="torch_op",
                             reason="no reference op (case, --op, --reference or reference.py): "
                                    "calls to the op under test were not looked for"))
    findings = [h.finding() for h in hits]
    shown = findings[:MAX_FINDINGS]
    if len(findings) > MAX_FINDINGS:
        shown.append(Finding(severity="note", key="scan",
                             reason=f"{len(findings) - MAX_FINDINGS} more findings not shown"))
    shown.extend(notes)
    n_err = sum(h.rule.severity == "error" for h in hits)
    n_warn = sum(h.rule.severity == "warning" for h in hits) + sum(f.severity == "warning" for f in notes)
    metrics = {"files": n_files, "errors": n_err, "warnings": n_warn,
               "replaced_ops": ",".join(replaced) or None, "replaced_from": source or None}
    ok = f"no known trick in {n_files} files" + (f" ({n_warn} warnings)" if n_warn else "")
    return CheckResult.from_findings(NAME, shown, ok_reason=ok, metrics=metrics)


__all__ = ["OP_ALIASES", "RULES", "Rule", "check_scan", "python_events", "replaced_names", "replaced_rules",
           "scan_project", "strip_c"]
