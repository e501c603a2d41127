#!/usr/bin/env bash
# Installs what the reach report's browser suite (npm run test:report) needs: Debian's
# chromium (apt-get, as root, only when missing) and fonts for its screenshots. The suite
# drives it with playwright-core from npm, which never downloads a browser of its own.
# Idempotent: a second run checks and exits at once.
set -euo pipefail
chromium="${ZSB_CHROMIUM:-/usr/bin/chromium}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/debian-packages.sh
source "$root/scripts/debian-packages.sh"
ensure_debian_packages setup-browser chromium fonts-dejavu-core
[ -x "$chromium" ] || { echo "setup-browser: $chromium is missing after the install" >&2; exit 1; }
# Chromium's wrapper script prints a shell warning on some machines: only the version line counts.
echo "setup-browser: $("$chromium" --version 2>/dev/null | head -n1)"
