#!/usr/bin/env bash
# Installs the pinned ansible-core (ansible-playbook) into a project-local virtualenv, for
# the integration test of the Zuul roles under zuul/roles/. Idempotent: does nothing when
# the pinned version is already there.
set -euo pipefail
ANSIBLE_CORE_VERSION="2.19.14"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-ansible"
installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ansible-core"))' 2>/dev/null || true
}
if [ -x "$venv/bin/ansible-playbook" ] && [ "$(installed_version)" = "$ANSIBLE_CORE_VERSION" ]; then
  echo "ansible-core $ANSIBLE_CORE_VERSION already installed in $venv"
  exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required to install ansible-core" >&2; exit 1; }
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$ANSIBLE_CORE_VERSION"
"$venv/bin/ansible-playbook" --version | head -1
