"""Put header-only installs into kernelgrade's cache for compile-only checks: the
cuBLAS/cuSPARSE/cuSOLVER include folders (only those), so torch-binding .cu files compile
against the CPU torch wheel, and the pinned apache-tvm-ffi headers, for [tvm-ffi] projects.

Usage: python scripts/install_headers.py [--dest DIR] [--no-tvm-ffi] [--cutlass]
  (idempotent: a cached folder is found without the network; prints the folders)
--cutlass also fills the CUTLASS releases kernelgrade supplies for `depends = ["cutlass_3_6"]`
and friends (otherwise the compile check installs one the first time a project needs it).
Offline, KG_WHEELHOUSE=DIR makes pip take the wheels from DIR (scripts/wheelhouse.py puts
the tvm-ffi wheel there). The math headers are required (exit 1 without them); the tvm-ffi
headers only for [tvm-ffi] projects, so failing to get them is a warning.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.build.headers import (  # noqa: E402
    TVM_FFI_WHEEL,
    default_dir,
    find_math_headers,
    CUTLASS_WHEELS,
    ensure_cutlass_headers,
    find_tvm_ffi_headers,
    install_headers,
    install_tvm_ffi_headers,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help=f"math headers folder (default: {default_dir()})")
    parser.add_argument("--no-tvm-ffi", action="store_true", help="leave out the apache-tvm-ffi headers")
    parser.add_argument("--cutlass", action="store_true", help="also the CUTLASS releases (nvidia-cutlass wheels)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    found = find_math_headers() if args.dest is None else None
    try:
        path = found or install_headers(args.dest)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path)
    if not args.no_tvm_ffi:
        try:
            print(find_tvm_ffi_headers() or install_tvm_ffi_headers())
        except (RuntimeError, OSError) as err:
            print(f"warning: {'=='.join(TVM_FFI_WHEEL)} headers not installed ({err}); [tvm-ffi] projects "
                  "will skip compile until this script runs with network or KG_WHEELHOUSE", file=sys.stderr)
    for dep in CUTLASS_WHEELS if args.cutlass else ():
        try:
            print(ensure_cutlass_headers(dep))
        except (RuntimeError, OSError) as err:
            print(f"warning: {dep} headers not installed ({err})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
