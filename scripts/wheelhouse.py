"""Download the wheels kernelgrade needs into a folder, for a GPU node with no network.

GPU nodes often have torch, triton and the CUDA libraries installed and nothing else
reachable. This resolves kernelgrade's dependencies (pyproject.toml, plus extras) for the
node's Python and platform, leaves out torch, triton and NVIDIA's CUDA wheels (the node
has its own), and the packages named with --have, then downloads the rest without their
dependencies. On the node:

    KG_SYSTEM_SITE=1 KG_WHEELHOUSE=DIR bash scripts/setup.sh

Usage: python scripts/wheelhouse.py DEST [--python-version 3.12] [--extras dev] [--have NAME ...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Installed on any CUDA host that runs torch; never worth carrying.
ALWAYS_SKIP = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extras: list[str]) -> list[str]:
    """pyproject's dependencies and the chosen extras, without the skipped ones."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"wheelhouse: no extra {extra!r} in pyproject.toml (have {', '.join(optional)})")
        reqs += optional[extra]
    return [r for r in reqs if not ALWAYS_SKIP.match(canonical(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]))]


def target_args(python_version: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def resolve(reqs: list[str], python_version: str) -> list[tuple[str, str]]:
    """(name, version) of everything pip would install for the target, via --dry-run --report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--target", str(Path(tmp) / "t"), "--report", str(report),
               *target_args(python_version), *reqs]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit("wheelhouse: pip could not resolve the dependencies:\n" + proc.stderr[-3000:])
        items = json.loads(report.read_text())["install"]
    return sorted({(canonical(i["metadata"]["name"]), i["metadata"]["version"]) for i in items})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("dest", type=Path, help="folder for the wheels (created)")
    parser.add_argument("--python-version", default="3.12", help="the node's Python, e.g. 3.12 (default)")
    parser.add_argument("--extras", default="dev", help="comma-separated extras (default: dev)")
    parser.add_argument("--have", nargs="*", default=[], metavar="NAME",
                        help="packages already on the node (left out, with their versions as the node has them)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be downloaded and stop")
    args = parser.parse_args(argv)

    extras = [e for e in args.extras.split(",") if e]
    have = {canonical(n) for n in args.have}
    pins = [(n, v) for n, v in resolve(requirements(extras), args.python_version)
            if n not in have and not ALWAYS_SKIP.match(n)]
    for name, version in pins:
        print(f"{name}=={version}")
    if args.dry_run:
        return 0
    args.dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           "-d", str(args.dest), *target_args(args.python_version), *[f"{n}=={v}" for n, v in pins]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print("wheelhouse: download failed:\n" + proc.stderr[-3000:], file=sys.stderr)
        return 1
    # setuptools builds kernelgrade's editable install on the node, offline.
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "-d", str(args.dest), *target_args(args.python_version), "setuptools>=68", "wheel"], check=False)
    # Header-only wheels (tvm-ffi, CUDA's CUTLASS): scripts/install_headers.py takes them from KG_WHEELHOUSE.
    sys.path.insert(0, str(ROOT))
    from harness.build.headers import CUTLASS_WHEELS, TVM_FFI_WHEEL

    header_wheels = ["==".join(TVM_FFI_WHEEL), *(f"nvidia-cutlass=={v}" for v in CUTLASS_WHEELS.values())]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "-d", str(args.dest), *target_args("3.12"), *header_wheels], check=False)
    size = sum(p.stat().st_size for p in args.dest.glob("*.whl"))
    print(f"{len(list(args.dest.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB in {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
