# Sourced by the set-up scripts: install_missing_debian_packages TAG PKG… installs, with
# apt-get as root, the Debian packages that dpkg does not report as "install ok
# installed", and does nothing when all are there. Not root and something missing: it
# names the packages and exits 1.
install_missing_debian_packages() {
  local tag="$1"
  shift
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "$tag: Debian packages present: $*"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "$tag: missing Debian packages ${missing[*]}; run this script as root or install them" >&2
    exit 1
  fi
  echo "$tag: installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
