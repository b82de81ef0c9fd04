"""Child side of the load probe (harness/build/load_probe.py): import a built extension's
package and say which of its ops registered a kernel for which dispatch key.

Runs in sandbox/, never in the harness: importing the package runs model-written
Python and loads model-written native code. The parent reads the last line that
starts with MARKER; what the package itself prints cannot end the output after it.
"""

from __future__ import annotations

import importlib
import json
import sys

MARKER = "KGLOAD "
#: Dispatch keys worth reporting: the backend kernels plus the composite ones that
#: would make an op "work" without any backend kernel.
KEYS = ("CUDA", "CPU", "Meta", "CompositeImplicitAutograd", "CompositeExplicitAutograd")


def probe(package_parent: str, package: str, namespace: str, api: str) -> dict:
    import torch  # trusted: imported before any candidate code

    out: dict = {"torch": torch.__version__, "torch_cuda": torch.version.cuda}
    sys.path.insert(0, package_parent)
    try:
        module = importlib.import_module(package)
    except BaseException as err:  # noqa: BLE001 - an undefined symbol is an ImportError, a bad __init__ anything
        out["import_error"] = f"{type(err).__name__}: {err}"[:2000]
        return out
    names = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith(namespace + "::"))
    out["ops"] = {n: [k for k in KEYS if torch._C._dispatch_has_kernel_for_dispatch_key(n, k)] for n in names}
    out["api_callable"] = callable(getattr(module, api, None))
    return out


def main() -> None:
    package_parent, package, namespace, api = sys.argv[1:5]
    result = probe(package_parent, package, namespace, api)
    sys.stdout.flush()
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
