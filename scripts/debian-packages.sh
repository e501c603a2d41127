# Sourced by the setup scripts: ensure_debian_packages TAG PKG… installs the Debian
# packages that are missing (apt-get, as root) and says which were already there. A package
# counts as installed only when dpkg says "install ok installed". TAG prefixes the messages.
ensure_debian_packages() {
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
    return 1
  fi
  echo "$tag: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
