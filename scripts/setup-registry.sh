#!/usr/bin/env bash
# Installs what the command-provider suite (test/credentials/command-registry.test.ts)
# drives: Debian's docker-registry (distribution 2.8, htpasswd auth), apache2-utils
# (htpasswd) and podman (the job-side `podman login`). apt-get, as root, only for packages
# that are missing; a second run checks and exits at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/debian-packages.sh
. "$root/scripts/debian-packages.sh"
ensure_debian_packages setup-registry docker-registry apache2-utils podman
