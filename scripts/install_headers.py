"""Put the cuBLAS/cuSPARSE/cuSOLVER include folders (only those) into kernelgrade's
cache, so torch-binding .cu files compile against the CPU torch wheel.

Usage: python scripts/install_headers.py [--dest DIR]   (idempotent; prints the folder)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.build.headers import default_dir, find_math_headers, install_headers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help=f"default: {default_dir()}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    found = find_math_headers() if args.dest is None else None
    try:
        path = found or install_headers(args.dest)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
