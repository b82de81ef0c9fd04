#!/usr/bin/env bash
# Set up kernelgrade on a fresh machine: system packages, a virtual environment in
# .venv with torch, kernelgrade and its extras, and the header-only CUDA includes
# needed for compile-only checks (and the pinned apache-tvm-ffi headers, for [tvm-ffi]
# projects; cached, so a second run needs no network). Idempotent: a second run only checks.
#
#   KG_TORCH      torch requirement when torch is missing (default torch==2.13.0; on this
#                 project's CPU machines that is the CPU build; GPU hosts keep their torch)
#   KG_SYSTEM_SITE=1   let .venv see the system's packages (GPU hosts with torch preinstalled)
#   KG_WHEELHOUSE=DIR  offline: install from DIR only (made by scripts/wheelhouse.py for a GPU
#                 node with no network); skips system packages; extras default to dev
#   KG_EXTRAS     extras to install (default dev,sass,local,inspect,ray)
#
#   --cuda-torch  also make .venv-cuda: a CUDA build of torch (KG_CUDA_TORCH, default
#                 torch==2.14.1, built for CUDA 13.0 like this machine's nvcc) with kernelgrade,
#                 so compile checks link and load CUDA extensions on a machine without a GPU.
#                 The tests use it; it costs ~5.5 GB of disk (a ~3 GB download off a mirror).
set -euo pipefail
cd "$(dirname "$0")/.."

cuda_torch=0
for arg in "$@"; do
  case $arg in
    --cuda-torch) cuda_torch=1 ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }
start=$SECONDS

pip_src=()
if [[ -n "${KG_WHEELHOUSE:-}" ]]; then
  [[ -d $KG_WHEELHOUSE ]] || { echo "setup.sh: KG_WHEELHOUSE=$KG_WHEELHOUSE is not a folder" >&2; exit 2; }
  pip_src=(--no-index --find-links "$KG_WHEELHOUSE")
  command -v bwrap >/dev/null || log "offline: bubblewrap not installed, so --sandbox auto uses the local backend"
else
  bash scripts/install_system.sh
fi

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  if [[ "${KG_SYSTEM_SITE:-0}" == 1 ]]; then python3 -m venv --system-site-packages .venv; else python3 -m venv .venv; fi
  # python3 itself inside a venv (GPU images keep torch in one): a venv made from it sees the
  # base interpreter's packages, not that venv's, so list its site-packages in a .pth.
  if [[ "${KG_SYSTEM_SITE:-0}" == 1 ]]; then
    python3 - <<'PY'
import site, sys, sysconfig
from pathlib import Path
if sys.prefix != sys.base_prefix:
    own = Path(".venv").resolve()
    target = own / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    target.mkdir(parents=True, exist_ok=True)
    (target / "_kernelgrade_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    print(f"[setup] .venv also sees {sys.prefix}'s packages", file=sys.stderr)
PY
  fi
fi
py=.venv/bin/python
pip_install() { $py -m pip --disable-pip-version-check -q install "${pip_src[@]}" "$@"; }

if ! $py -c "import torch" 2>/dev/null; then
  if [[ -n "${KG_WHEELHOUSE:-}" ]]; then
    echo "setup.sh: torch is missing and the install is offline: use KG_SYSTEM_SITE=1 on a host with torch" >&2
    exit 1
  fi
  log "installing ${KG_TORCH:-torch==2.13.0}"
  pip_install "${KG_TORCH:-torch==2.13.0}"
fi

# Reinstall only when pyproject.toml or the extras changed since the last successful install.
stamp=.venv/.kernelgrade-installed
extras=${KG_EXTRAS:-$([[ -n "${KG_WHEELHOUSE:-}" ]] && echo dev || echo dev,sass,local,inspect,ray)}
want=$(cat pyproject.toml setup.py <(echo "$extras") | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  note=""; [[ $extras == *local* ]] && note=" (llama-cpp-python builds from source: ~4 min on 2 cores)"
  log "installing kernelgrade with extras $extras$note"
  pip_install -e ".[$extras]"
  echo "$want" > "$stamp"
fi

$py scripts/install_headers.py

if [[ $cuda_torch == 1 ]]; then
  cpy=.venv-cuda/bin/python
  [[ -x $cpy ]] || { log "creating .venv-cuda"; python3 -m venv .venv-cuda; }
  if ! $cpy -c "import sys, torch; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
    log "installing ${KG_CUDA_TORCH:-torch==2.14.1} (a CUDA build) into .venv-cuda"
    $cpy -m pip --disable-pip-version-check -q install "${KG_CUDA_TORCH:-torch==2.14.1}"
  fi
  cstamp=.venv-cuda/.kernelgrade-installed
  if [[ ! -f $cstamp || "$(cat "$cstamp")" != "$want" ]]; then
    log "installing kernelgrade into .venv-cuda"
    $cpy -m pip --disable-pip-version-check -q install -e .
    echo "$want" > "$cstamp"
  fi
fi
log "ready in $((SECONDS - start)) s"
