#!/usr/bin/env bash
# Set up kernelgrade on a fresh machine: system packages, a virtual environment in
# .venv with torch, kernelgrade and its extras, and the header-only CUDA includes
# needed for compile-only checks. Idempotent: a second run only checks.
#
#   KG_TORCH      torch requirement when torch is missing (default torch==2.13.0; on this
#                 project's CPU machines that is the CPU build; GPU hosts keep their torch)
#   KG_SYSTEM_SITE=1   let .venv see the system's packages (GPU hosts with torch preinstalled)
set -euo pipefail
cd "$(dirname "$0")/.."

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
log "ready in $((SECONDS - start)) s"
