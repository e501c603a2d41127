#!/usr/bin/env bash
# Installs what the reach report's browser suite (npm run test:report) needs: Debian's
# chromium (apt-get, as root, only when missing) and fonts for its screenshots. The suite
# drives it with playwright-core from npm, which never downloads a browser of its own.
# Idempotent: a second run checks and exits at once.
set -euo pipefail
chromium="${ZSB_CHROMIUM:-/usr/bin/chromium}"
apt_packages=(chromium fonts-dejavu-core)
missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-browser: missing Debian packages ${missing[*]}; run this script as root or install them" >&2
    exit 1
  fi
  echo "setup-browser: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup-browser: Debian packages present: ${apt_packages[*]}"
fi
[ -x "$chromium" ] || { echo "setup-browser: $chromium is missing after the install" >&2; exit 1; }
# Chromium's wrapper script prints a shell warning on some machines: only the version line counts.
echo "setup-browser: $("$chromium" --version 2>/dev/null | head -n1)"
