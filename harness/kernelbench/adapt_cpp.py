"""The C++ side of an adapted KernelBench answer: the torch binding that registers each
load_inline function as an op of the extension's namespace.

load_inline binds functions with pybind11, which the runner cannot see run; registered as
torch ops they are dispatched, so the runner's evidence (the extension's op ran) and its
tracing work as for any kernel-builder project. TORCH_LIBRARY infers an op's schema from
the C++ signature but accepts only its own types (int64_t, double, at::Tensor, ...), so each
function gets a wrapper taking those types when its declaration can be read; otherwise the
function itself is registered.
"""

from __future__ import annotations

import re

from harness.kernelbench.answer import InlineCall

_T = r"(?:torch|at)::Tensor"
_PARAM_TYPES = [
    (rf"(?:std::)?vector\s*<\s*(?:const\s+)?{_T}\s*>\s*&?", "std::vector<at::Tensor>"),
    (rf"(?:c10::|std::)optional\s*<\s*{_T}\s*>\s*&?", "std::optional<at::Tensor>"),
    (rf"{_T}\s*&?", "at::Tensor"),
    (r"(?:unsigned\s+|signed\s+)?(?:int|long|long\s+long|long\s+int|short|size_t|(?:std::)?u?int(?:64|32|16)_t)\s*&?",
     "int64_t"),
    (r"(?:float|double)\s*&?", "double"),
    (r"bool\s*&?", "bool"),
    (r"(?:at::|c10::|torch::)?IntArrayRef\s*&?|(?:std::)?vector\s*<\s*(?:int64_t|long)\s*>\s*&?",
     "std::vector<int64_t>"),
]
_RETURN_TYPES = [
    (r"void", "void"),
    (rf"{_T}", "at::Tensor"),
    (rf"(?:std::)?vector\s*<\s*{_T}\s*>", "std::vector<at::Tensor>"),
]
_QUALIFIERS = re.compile(r"^(?:(?:static|inline|extern|constexpr|__host__|TORCH_API|C10_EXPORT)\s+)+")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _map(text: str, table: list[tuple[str, str]]) -> str | None:
    text = re.sub(r"^const\s+", "", text.strip()).strip()
    for pattern, mapped in table:
        if re.fullmatch(pattern, text):
            return mapped
    if table is _RETURN_TYPES:
        m = re.fullmatch(r"(?:std::)?tuple\s*<(.*)>", text)
        if m and all(_map(p, _RETURN_TYPES) == "at::Tensor" for p in _split(m.group(1))):
            return "std::tuple<" + ", ".join(["at::Tensor"] * len(_split(m.group(1)))) + ">"
    return None


def _split(params: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in params:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [p.strip() for p in out]


def _param_type(param: str) -> str:
    param = param.split("=", 1)[0].strip()
    m = re.fullmatch(r"(.*?[\s&*>])\s*([A-Za-z_]\w*)", param)
    kind = m.group(1).strip() if m else ""
    if kind and not re.fullmatch(r"(?:const\s+)?(?:unsigned|signed|long|short)", kind):
        return kind
    return param


def signature_of(fn: str, text: str) -> tuple[str, list[str]] | None:
    """(wrapper return type, wrapper parameter types) from fn's declaration, or None."""
    pattern = re.compile(rf"([\w:<>,\s*&]*?)\b{re.escape(fn)}\s*\(([^()]*)\)\s*(?:const\s*)?(?:;|\{{)")
    for m in pattern.finditer(text):
        ret = _QUALIFIERS.sub("", re.split(r"[\n;{}]", m.group(1))[-1].strip())
        mapped_ret = _map(ret, _RETURN_TYPES)
        if mapped_ret is None:
            continue
        params = [] if m.group(2).strip() in ("", "void") else _split(m.group(2))
        types = [_map(_param_type(p), _PARAM_TYPES) for p in params]
        if all(types):
            return mapped_ret, [t for t in types if t]
    return None


_SCHEMA = {"at::Tensor": "Tensor", "double": "float", "int64_t": "int", "bool": "bool",
           "std::vector<at::Tensor>": "Tensor[]", "std::optional<at::Tensor>": "Tensor?",
           "std::vector<int64_t>": "int[]", "void": "()"}


def _schema(fn: str, ret: str, types: list[str]) -> str:
    if ret.startswith("std::tuple<"):
        out = "(" + ", ".join(["Tensor"] * len(_split(ret[len("std::tuple<"):-1]))) + ")"
    else:
        out = _SCHEMA[ret]
    return f"{fn}(" + ", ".join(f"{_SCHEMA[t]} a{i}" for i, t in enumerate(types)) + f") -> {out}"


def binding_cpp(calls: list[InlineCall]) -> str:
    """torch-ext/torch_binding.cpp: load_inline's main.cpp (torch/all.h in place of its
    torch/extension.h, the cpp_sources) with a TORCH_LIBRARY block in place of its PYBIND11_MODULE: each function's schema from its
    wrapper's types, its kernel registered for the build's backend (CPU_KERNEL / CUDA_KERNEL)."""
    text = strip_comments("\n".join(s for c in calls for s in (*c.cpp_sources, *c.cuda_sources)))
    wrappers, defs, impls = [], [], []
    for fn in (f for c in calls for f in c.functions):
        sig = signature_of(fn, text)
        if sig is None:  # unreadable declaration: the function itself, schema inferred (catch-all kernel)
            defs.append(f'  ops.def("{fn}", &{fn});')
            continue
        ret, types = sig
        params = ", ".join(f"{t} a{i}" for i, t in enumerate(types))
        args = ", ".join(f"a{i}" for i in range(len(types)))
        body = f"{fn}({args});" if ret == "void" else f"return {fn}({args});"
        wrappers.append(f"{ret} kg_wrap_{fn}({params}) {{ {body} }}")
        defs.append(f'  ops.def("{_schema(fn, ret, types)}");')
        impls.append(f'  ops.impl("{fn}", KG_BACKEND, TORCH_FN(kg_wrap_{fn}));')
    return "\n".join([
        "// Generated by kernelgrade from a KernelBench answer: load_inline's main.cpp (torch/all.h",
        "// and the answer's cpp_sources), its functions registered as ops instead of bound with pybind11.",
        "#include <torch/all.h>",
        "#include <torch/library.h>",
        "",
        '#include "registration.h"',
        '#include "kb_inline/cpp_sources.h"',
        "",
        "#if defined(CPU_KERNEL)",
        "#define KG_BACKEND torch::kCPU",
        "#else",
        "#define KG_BACKEND torch::kCUDA",
        "#endif",
        "",
        "namespace {",
        *wrappers,
        "}  // namespace",
        "",
        "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {",
        *defs,
        *impls,
        "}",
        "",
        "REGISTER_EXTENSION(TORCH_EXTENSION_NAME)",
        "",
    ])


#: load_inline builds a full-API Python module, so answers include <torch/extension.h> (pybind11
#: and Python.h); kernel-builder's extension is a limited-API module, where pybind11 does not
#: compile. <torch/all.h> is the same C++ API without the Python bindings, which load_inline's
#: own generated binding used and the torch binding here replaces.
_EXTENSION_H = re.compile(r'^(\s*#\s*include\s*)[<"]torch/extension\.h[>"]', re.MULTILINE)


def _without_python(source: str) -> str:
    return _EXTENSION_H.sub(r"\1<torch/all.h>  // kernelgrade: was <torch/extension.h>", source)


def cpp_sources_h(calls: list[InlineCall]) -> str:
    """kb_inline/cpp_sources.h: every call's cpp_sources as load_inline concatenates them (only
    <torch/extension.h> read as <torch/all.h>)."""
    parts = ["// Generated by kernelgrade: the answer's load_inline cpp_sources, verbatim.", "#pragma once",
             "#include <torch/all.h>"]
    for call in calls:
        parts.append(f"// load_inline(name={call.name!r})")
        parts.extend(_without_python(src) for src in call.cpp_sources)
    return "\n".join(parts) + "\n"


def cuda_source(call: InlineCall) -> str:
    """kb_inline/<name>.cu: load_inline's cuda.cu (its three implicit includes, then cuda_sources,
    <torch/extension.h> read as <torch/all.h>)."""
    return "\n".join(["#include <torch/types.h>", "#include <cuda.h>", "#include <cuda_runtime.h>",
                      *(_without_python(src) for src in call.cuda_sources)]) + "\n"


__all__ = ["binding_cpp", "cpp_sources_h", "cuda_source", "signature_of", "strip_comments"]
