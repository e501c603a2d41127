#!/usr/bin/env bash
# Installs what the command-provider suite (test/credentials/command-registry.test.ts)
# drives: Debian's docker-registry (distribution 2.8, htpasswd auth), apache2-utils
# (htpasswd) and podman (the job-side `podman login`). apt-get, as root, only for packages
# that are missing; a second run checks and exits at once.
set -euo pipefail
apt_packages=(docker-registry apache2-utils podman)
missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-registry: Debian packages present: ${apt_packages[*]}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-registry: missing Debian packages ${missing[*]}; run this script as root or install them" >&2
  exit 1
fi
echo "setup-registry: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's own service is not wanted: the tests start registries themselves.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
