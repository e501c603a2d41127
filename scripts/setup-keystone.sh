#!/usr/bin/env bash
# Installs the real OpenStack Keystone that the credential-rotation tests start
# (test/support/keystone.ts):
# - Debian packages (apt-get, as root, only those missing): python3-venv;
# - the pinned keystone and gunicorn from PyPI into .venv-keystone/, a virtualenv made
#   from Debian's /usr/bin/python3 (the interpreter does not matter to Keystone, but one
#   fixed interpreter keeps the virtualenv reproducible across machines).
# Idempotent: a second run checks the installed versions and exits in about a second.
set -euo pipefail
KEYSTONE_VERSION="30.0.0"
GUNICORN_VERSION="23.0.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-keystone"
python=/usr/bin/python3
start=$(date +%s)

# A package counts as installed only when dpkg says "install ok installed".
apt_packages=(python3-venv)
missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-keystone: missing Debian packages ${missing[*]}; run this script as root or install them" >&2
    exit 1
  fi
  echo "setup-keystone: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x "$python" ] || { echo "setup-keystone: $python (Debian's python3) is required" >&2; exit 1; }

installed() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("keystone"), m.version("gunicorn"))' 2>/dev/null || true
}
if [ -x "$venv/bin/keystone-manage" ] && [ "$(installed)" = "$KEYSTONE_VERSION $GUNICORN_VERSION" ]; then
  echo "setup-keystone: keystone $KEYSTONE_VERSION and gunicorn $GUNICORN_VERSION already installed in $venv"
else
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "keystone==$KEYSTONE_VERSION" "gunicorn==$GUNICORN_VERSION"
  echo "setup-keystone: installed keystone and gunicorn ($(installed)) in $venv"
fi
# Keep git and Biome (which reads .gitignore files) out of the virtualenv.
echo "*" >"$venv/.gitignore"
echo "setup-keystone: done in $(( $(date +%s) - start )) s"
