"""Put header-only installs into kernelgrade's cache for compile-only checks: the
cuBLAS/cuSPARSE/cuSOLVER include folders (only those), so torch-binding .cu files compile
against the CPU torch wheel, and the pinned apache-tvm-ffi headers, for [tvm-ffi] projects.

Usage: python scripts/install_headers.py [--dest DIR] [--no-tvm-ffi]
  (idempotent: a cached folder is found without the network; prints the folders)
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
    find_tvm_ffi_headers,
    install_headers,
    install_tvm_ffi_headers,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help=f"math headers folder (default: {default_dir()})")
    parser.add_argument("--no-tvm-ffi", action="store_true", help="leave out the apache-tvm-ffi headers")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
