#!/usr/bin/env bash
# Installs the real OpenStack client library that the ready-files test uses to read a
# clouds.yaml rendered by the broker and authenticate with it against a real Keystone
# (test/credentials/ready-files-openstacksdk.test.ts, docs/ready-files.md):
# the pinned openstacksdk from PyPI into .venv-openstack/, a virtualenv of its own (the
# Keystone server's .venv-keystone/ belongs to scripts/setup-keystone.sh; a client beside
# the server would test nothing the job's machine has). Debian's python3-venv is needed;
# scripts/setup-keystone.sh installs it, this script only checks.
# Idempotent: a second run checks the installed version and exits in about a second.
set -euo pipefail
OPENSTACKSDK_VERSION="4.22.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-openstack"
python=/usr/bin/python3
start=$(date +%s)

[ -x "$python" ] || { echo "setup-openstacksdk: $python (Debian's python3) is required" >&2; exit 1; }
"$python" -c 'import ensurepip' 2>/dev/null || {
  echo "setup-openstacksdk: python3-venv is missing (npm run setup:keystone installs it)" >&2
  exit 1
}

installed() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("openstacksdk"))' 2>/dev/null || true
}
if [ "$(installed)" = "$OPENSTACKSDK_VERSION" ]; then
  echo "setup-openstacksdk: openstacksdk $OPENSTACKSDK_VERSION already installed in $venv"
else
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openstacksdk==$OPENSTACKSDK_VERSION"
  echo "setup-openstacksdk: installed openstacksdk $(installed) in $venv"
fi
# Keep git and Biome (which reads .gitignore files) out of the virtualenv.
echo "*" >"$venv/.gitignore"
echo "setup-openstacksdk: done in $(( $(date +%s) - start )) s"
