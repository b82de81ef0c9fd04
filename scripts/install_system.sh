#!/usr/bin/env bash
# System packages kernelgrade's sandbox needs: bubblewrap for `--sandbox bwrap`.
# Idempotent: installs only what is missing and returns at once when all is present.
#   sudo scripts/install_system.sh            # bubblewrap
#   sudo scripts/install_system.sh --podman   # also podman + runc (container backend without Docker)
set -euo pipefail

want=(bubblewrap chromium)  # chromium: the HTML report test loads the page headless
[[ "${1:-}" == "--podman" ]] && want+=(podman runc)

have_cmd() { command -v "$1" >/dev/null 2>&1; }
cmd_for() { case "$1" in bubblewrap) echo bwrap ;; *) echo "$1" ;; esac; }

missing=()
for pkg in "${want[@]}"; do
  have_cmd "$(cmd_for "$pkg")" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    if have_cmd sudo; then exec sudo -E "$0" "$@"; fi
    echo "install_system.sh: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  if have_cmd apt-get; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  elif have_cmd dnf; then
    dnf install -y "${missing[@]}"
  else
    echo "install_system.sh: no apt-get or dnf; install ${missing[*]} by hand" >&2
    exit 1
  fi
fi

# Ubuntu 23.10+ forbids unprivileged user namespaces unless a program has an AppArmor
# profile allowing them; bwrap run by a normal user (e.g. a CI runner) needs one.
restrict=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
profile=/etc/apparmor.d/kernelgrade-bwrap
if [[ -r $restrict && $(cat "$restrict") == 1 && ! -e $profile ]] && have_cmd apparmor_parser; then
  if [[ $(id -u) -ne 0 ]]; then
    if have_cmd sudo; then exec sudo -E "$0" "$@"; fi
    echo "install_system.sh: need root to add the AppArmor profile for bwrap" >&2
    exit 1
  fi
  bwrap_path=$(command -v bwrap)
  cat >"$profile" <<PROFILE
abi <abi/4.0>,
include <tunables/global>
profile kernelgrade-bwrap ${bwrap_path} flags=(unconfined) {
  userns,
}
PROFILE
  apparmor_parser -r "$profile"
fi

# Prove it works for the calling user, not just that it is installed.
if ! bwrap --unshare-all --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
     --symlink usr/bin /bin --proc /proc --dev /dev /usr/bin/true; then
  echo "install_system.sh: bwrap is installed but cannot create namespaces here" >&2
  exit 1
fi
echo "bwrap: $(bwrap --version)"
