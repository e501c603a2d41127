#!/usr/bin/env bash
# Installs what the real-Zuul end-to-end suite (npm run test:zuul) needs:
# - Debian packages (apt-get, as root, only those missing): zookeeper (its JVM is started
#   by the suite itself, not as a service), the netty and slf4j jars ZooKeeper's TLS needs
#   on its classpath, bubblewrap (Zuul's job sandbox), openssh-client (an ssh-agent per
#   build), git, python3-venv, and a Java runtime;
# - the pinned zuul from PyPI into .venv-zuul/, a virtualenv made from Debian's
#   /usr/bin/python3: bubblewrap mounts only /usr, /lib, …, so an interpreter from pyenv
#   or /opt would be missing inside the job sandbox;
# - the Ansible versions the executor runs (zuul-manage-ansible, once).
# Idempotent: a second run checks and exits in a few seconds.
set -euo pipefail
ZUUL_VERSION="14.3.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-zuul"
python=/usr/bin/python3
start=$(date +%s)

# shellcheck source=lib/debian-packages.sh
. "$root/scripts/lib/debian-packages.sh"
install_missing_debian_packages setup-zuul zookeeper bubblewrap libnetty-java libslf4j-java \
  openssh-client git python3-venv default-jre-headless

[ -x "$python" ] || { echo "setup-zuul: $python (Debian's python3) is required" >&2; exit 1; }

installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("zuul"))' 2>/dev/null || true
}
if [ -x "$venv/bin/zuul-scheduler" ] && [ "$(installed_version)" = "$ZUUL_VERSION" ] \
   && [ "$(readlink -f "$venv/bin/python")" = "$(readlink -f "$python")" ]; then
  echo "setup-zuul: zuul $ZUUL_VERSION already installed in $venv"
else
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "zuul==$ZUUL_VERSION"
  rm -f "$venv/.ansible-installed"
  echo "setup-zuul: installed zuul $(installed_version) in $venv"
fi

# zuul-manage-ansible installs every supported Ansible version into the venv's
# lib/zuul/ansible; the marker records that it finished for this zuul version.
marker="$venv/.ansible-installed"
if [ "$(cat "$marker" 2>/dev/null || true)" != "$ZUUL_VERSION" ]; then
  echo "setup-zuul: zuul-manage-ansible (about a minute or two)"
  "$venv/bin/zuul-manage-ansible" >"$venv/zuul-manage-ansible.log" 2>&1 || {
    tail -n 40 "$venv/zuul-manage-ansible.log" >&2
    echo "setup-zuul: zuul-manage-ansible failed (log: $venv/zuul-manage-ansible.log)" >&2
    exit 1
  }
  echo "$ZUUL_VERSION" >"$marker"
fi
# Keep git and Biome (which reads .gitignore files) out of the virtualenv.
echo "*" >"$venv/.gitignore"
echo "setup-zuul: done in $(( $(date +%s) - start )) s"
