#!/usr/bin/env bash
# Set up kernelgrade on a fresh machine: system packages, a virtual environment in
# .venv with torch, kernelgrade and its extras, and the header-only CUDA includes
# needed for compile-only checks. Idempotent: a second run only checks.
#
#   KG_TORCH      torch requirement when torch is missing (default torch==2.13.0; on this
#                 project's CPU machines that is the CPU build; GPU hosts keep their torch)
#   KG_SYSTEM_SITE=1   let .venv see the system's packages (GPU hosts with torch preinstalled)
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
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }
start=$SECONDS

bash scripts/install_system.sh

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  if [[ "${KG_SYSTEM_SITE:-0}" == 1 ]]; then python3 -m venv --system-site-packages .venv; else python3 -m venv .venv; fi
fi
py=.venv/bin/python
pip="$py -m pip --disable-pip-version-check -q"

if ! $py -c "import torch" 2>/dev/null; then
  log "installing ${KG_TORCH:-torch==2.13.0}"
  $pip install "${KG_TORCH:-torch==2.13.0}"
fi

# Reinstall only when pyproject.toml changed since the last successful install.
stamp=.venv/.kernelgrade-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  log "installing kernelgrade with extras dev, sass, local (llama-cpp-python builds from source: ~4 min on 2 cores)"
  $pip install -e '.[dev,sass,local]'
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
