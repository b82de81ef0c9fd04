"""The scan's rule table: each known trick as a pattern on C/C++ text or on Python events,
with its severity and the reason a reader sees (harness/checks/scan.py explains the scheme)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.common.results import Severity


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
    not an allocation/view/copy op (harness.execute.aten_ops.TRIVIAL_ATEN, shared with the run check) or a helper in NOT_COMPUTE."""


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
# Modules whose functions share those names but take numbers or arrays, not tensors (math.log).
_NOT_TENSORS = r"(?:math|cmath|numpy|np|scipy|statistics|operator|random|builtins|decimal|fractions|itertools|functools)"
# In C++ the same names exist on at::vec::Vectorized (exp, sqrt, ...); keep tensor-only ones.
_CPP_COMPUTE_METHODS = (
    "addmm|baddbmm|bmm|cumsum|einsum|gelu|layer_norm|linear|log_softmax|matmul|mean|mm|norm|prod|"
    "rms_norm|silu|softmax|sum|var")
_TIMER_FUNCS = (r"cudaEvent\w+|cudaDeviceSynchronize|cudaStreamSynchronize|cudaStreamWaitEvent|"
                r"cudaLaunchKernel|cudaMemcpy\w*|cudaGetLastError|cuEvent\w+|cuLaunchKernel|"
                r"cuStreamSynchronize|cuCtxSynchronize|clock_gettime|gettimeofday|dlsym")
# What the grading itself uses inside the candidate's process: replacing one has no honest use.
_INSTRUMENTS = (r"allclose|isclose|equal|testing|Tensor|_C|overrides|profiler|autograd\.profiler|"
                r"utils\._python_dispatch|cuda\.(?:Event|synchronize|current_stream|default_stream|Stream|"
                r"set_stream|stream|_sleep)|library")
# The same, as attribute names set from C++ (`.attr("allclose") = ...`).
_INSTRUMENT_ATTRS = (r"(?:allclose|isclose|equal|assert_close|perf_counter\w*|time|time_ns|monotonic\w*|"
                     r"process_time\w*|synchronize|Event|elapsed_time|record|_sleep)")
# Assignments to these torch sub-modules are settings, not patches.
_TORCH_SETTINGS = r"backends\.|_dynamo\.config\.|_inductor\.config\.|_functorch\.config\."

RULES: tuple[Rule, ...] = (
    # --- Python package: errors ---------------------------------------------------------
    # Only what has no use but against the grade: replacing the instruments the grading uses in
    # the candidate's process (clocks, checkers, profiler and dispatch hooks, tensor methods),
    # hooks that run inside someone else's code, and reaching another process. What honest
    # kernel packages do (kernels-community: compatibility shims on torch.distributed, env
    # switches, caches on disk, JIT through subprocess, codegen with exec) is a warning below:
    # the trust boundary, not this scan, keeps the judge out of reach.
    Rule("monkeypatch", "py", "error", rf"^(assign|setattr) torch\.(?:{_INSTRUMENTS})\b\S*",
         "replaces what the grading measures or checks with (torch's clock, checker, profiler or dispatch)"),
    Rule("monkeypatch", "py", "error", r"^(assign|setattr) (time|timeit|builtins|__builtins__|pytest|unittest)\b\S*",
         "replaces part of the timer, a builtin or a test module"),
    Rule("monkeypatch", "py", "error",
         r"^arg torch\.library\.(Library|impl|register_kernel|define|_scoped_library) aten\b",
         "registers its own kernel in the aten namespace (replaces PyTorch's op)"),
    Rule("hook", "py", "error",
         r"^(call|ref) (sys\.(settrace|setprofile|addaudithook|monitoring\.\S+)|"
         r"threading\.(settrace|setprofile|settrace_all_threads|setprofile_all_threads)|gc\.callbacks\S*)$",
         "installs a hook that runs inside other code (a turn after its call has returned)"),
    Rule("reads_data", "py", "error", r"^string .*/proc/(?:\d|%|\{|$)",
         "names another process's /proc entry (its memory, files or environment)"),
    # --- Python package: warnings -------------------------------------------------------
    Rule("monkeypatch", "py", "warning", rf"^(assign|setattr) torch\.(?!{_TORCH_SETTINGS})(?!(?:{_INSTRUMENTS})\b)\S+",
         "replaces a torch attribute (a compatibility shim? the judge's clock and checks are outside its reach)"),
    Rule("monkeypatch", "py", "warning",
         r"^(assign|setattr) (triton|numpy|sys|gc|inspect|importlib)\b\S*",
         "replaces part of another module (a shim, a redirected stream, a registered submodule?)"),
    Rule("frame_inspection", "py", "warning",
         r"^(call|ref) (sys\._getframe|sys\._current_frames|"
         r"inspect\.(stack|currentframe|getouterframes|getinnerframes|trace|getframeinfo)|"
         r"gc\.(get_objects|get_referrers|get_referents)|traceback\.(extract_stack|walk_stack))$",
         "inspects the call stack or the heap (the inputs it could find there are given only when due)"),
    Rule("frame_inspection", "py", "warning", r"^ref \S+\.(f_back|f_locals|f_globals|tb_frame|gi_frame|__globals__)$",
         "reads a frame's or function's variables"),
    Rule("reads_data", "py", "warning",
         r"^call ((builtins|io|os|codecs)\.)?open$|^call \S+\.(read_text|read_bytes)$",
         "opens files outside its own package folder (a cache? the checker's and the reference's files "
         "are out of the candidate's reach)"),
    Rule("reads_data", "py", "warning",
         r"^call (torch\.load|torch\.from_file|numpy\.(load|fromfile|memmap|loadtxt|genfromtxt)|"
         r"pickle\.loads?|marshal\.loads?|shelve\.open|json\.load|mmap\.mmap)$",
         "loads data from a file (saved outputs would not be a computed result; correctness on secret "
         "inputs decides)"),
    Rule("reads_data", "py", "warning",
         r"^call (glob\.i?glob|os\.(listdir|scandir|walk)|\S+\.(glob|rglob|iterdir))$",
         "lists files outside its own package folder"),
    Rule("reads_data", "py", "warning", r"^call \S+ @own$",
         "reads or writes files in its own package folder (package data such as a tuning table; "
         "the checker's and the reference's files are out of the candidate's reach)"),
    Rule("reads_data", "py", "warning", r"^ref os\.(environ|environb|getenv|getenvb|putenv|unsetenv)\b",
         "reads or changes the environment (a setting? the candidate's environment holds no secrets)"),
    Rule("reads_data", "py", "warning", r"^string .*/proc/(?![\d%{]|$)",
         "names /proc (system information such as /proc/cpuinfo)"),
    Rule("other_process", "py", "warning",
         r"^(import|ref) (subprocess|pty|socket|urllib|http|requests|ftplib)\b|"
         r"^ref os\.(system|popen|fork|forkpty|kill|exec\w*|spawn\w*|posix_spawn\w*)$",
         "runs other programs or opens connections (the sandbox has no network, and a process "
         "started while it is graded ends the run)"),
    Rule("hidden_code", "py", "warning", r"^call (builtins\.)?(exec|eval)$",
         "runs code built at run time (code generation? hidden from review)"),
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
    Rule("pytorch_compute", "py", "warning", rf"^call (?!{_NOT_TENSORS}\.)[^.\s]\S*\.(?P<name>{_PY_COMPUTE_METHODS})$",
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
    Rule("monkeypatch", "cpp", "error",
         rf"\.attr\s*\(\s*\"{_INSTRUMENT_ATTRS}\"\s*\)\s*=(?!=)",
         "replaces a clock or checker the grading uses, from C++", strings=True),
    Rule("frame_inspection", "cpp", "error", r"\b(?:PyEval_SetTrace|PyEval_SetProfile)\s*\(",
         "installs a Python trace or profile hook from C++ (a turn inside other code)"),
    Rule("other_process", "cpp", "error",
         r"(?<![\w.>])(?:std::)?(?:ptrace|process_vm_readv|process_vm_writev)\s*\(",
         "reads or writes another process's memory (no kernel needs to)"),
    Rule("reads_data", "cpp", "error", r"\"[^\"\n]*/proc/(?:\d|%|\"|\{)", "names another process's /proc entry",
         strings=True),
    # --- C/C++/CUDA: warnings -----------------------------------------------------------
    Rule("monkeypatch", "cpp", "warning",
         rf"\.attr\s*\(\s*\"(?!{_INSTRUMENT_ATTRS}\")[^\"]*\"\s*\)\s*=(?!=)",
         "sets an attribute of a Python object from C++ (an alias in its own module?)", strings=True),
    Rule("frame_inspection", "cpp", "warning",
         r"\b(?:PyRun_\w+|Py_CompileString\w*|PyEval_GetFrame|PyEval_GetGlobals|PyEval_GetLocals|"
         r"PyThreadState_GetFrame|PyFrame_\w+)\s*\(|\bpy(?:bind11)?::(?:exec|eval|eval_file)\s*\(",
         "runs Python or reads Python frames from C++"),
    Rule("other_process", "cpp", "warning",
         r"(?<![\w.>])(?:std::)?(?:system|popen|fork|vfork|execv|execvp|execve|execl|execlp|posix_spawn)\s*\(",
         "runs other programs (a JIT compile? a process started while it is graded ends the run)"),
    Rule("reads_data", "cpp", "warning", r"\"[^\"\n]*/proc/(?![\d%\"{])", "names /proc (system information)",
         strings=True),
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
    """A regex for `name` ignoring case and underscores, as harness.execute.judge compares op names."""
    letters = [c for c in name.split("::")[-1].split(".")[0] if c != "_"]
    return "(?i:_*" + "_*".join(re.escape(c) for c in letters) + "_*)"


def replaced_rules(names: list[str]) -> list[Rule]:
    """The error rules for calling the op under test, from its names (op, API, TORCH_OPS)."""
    bases = sorted({n.split("::")[-1].split(".")[0] for n in names if n and n.strip("_")})
    if not bases:
        return []
    alt = "(?:" + "|".join(_loose(b) for b in bases) + ")"
    rules = [
        # A module class (torch.nn.Linear: what holds the weights) is not the op `linear`.
        Rule("torch_op", "py", "error", rf"^(call|ref) (?!\.)(?!self\.)(?!torch\.ops\.(?!aten\.))"
             rf"(?!torch\.nn\.(?:\w+\.)*[A-Z]\w*$)\S*\.{alt}$", _REPLACED_REASON),
        # ... but a stateless one (torch.nn.Softmax()(x)) may be the op itself: a warning, and the
        # run check's trace of the ops the candidate calls decides.
        Rule("torch_op", "py", "warning", rf"^(call|ref) torch\.nn\.(?:\w+\.)*(?=[A-Z]){alt}$",
             "uses the module class of the op it replaces (the run check traces whether it computes with it)"),
        Rule("torch_op", "py", "error", rf"^(string|arg \S+) aten::{alt}(\.\w+)?$", _REPLACED_REASON),
        Rule("torch_op", "cpp", "error", rf"\b(?:at|torch|aten|c10)::(?:\w+::)*{alt}\b", _REPLACED_REASON,
             strings=True),
        Rule("torch_op", "cpp", "error", rf"(?:\.|->)\s*{alt}\s*\(", _REPLACED_REASON),
    ]
    if any(re.fullmatch(_loose(b), "matmul") for b in bases):
        rules.append(Rule("torch_op", "py", "error", r"^call @$", _REPLACED_REASON + " (the @ operator)"))
    return rules
