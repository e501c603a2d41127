# Sourced by the set-up scripts: ensure_debian_packages NAME PACKAGE… installs, with
# apt-get as root, the Debian packages that are missing; NAME prefixes the messages. A
# package counts as installed only when dpkg says "install ok installed". Without root
# and with packages missing it says which and exits 1.
ensure_debian_packages() {
  local name="$1"
  shift
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "$name: Debian packages present: $*"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "$name: missing Debian packages ${missing[*]}; run this script as root or install them" >&2
    exit 1
  fi
  echo "$name: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
