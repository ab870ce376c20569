#!/usr/bin/env bash
# The Debian packages the tests need, in one list (PACKAGES below), and the
# step that installs the missing ones. `make test` runs it first (through
# `make system-deps`), and so does .ci/run's apt phase: add a package here,
# nowhere else.
#
# Usage:
#   hack/system-packages.sh [install]  install the missing packages: as root on a Debian (apt) machine,
#                                      `apt-get update` once, then `apt-get install --no-install-recommends`
#                                      (each retried 3 times); as another user, print what is missing and
#                                      the command that installs it, and fail
#   hack/system-packages.sh check      only say what is missing (exit 0 when nothing is)
#   hack/system-packages.sh list       the package names, one a line
#
# A package counts as present when dpkg says it is installed, or when every
# command or file the tests use from it (the second column) is there anyway,
# e.g. containerd from another vendor's package; then nothing is installed over
# it. On a machine without apt-get and dpkg-query only those commands and
# files are checked. When nothing is missing the script only reads dpkg's
# database: no apt-get update, well under a second.
#
# Settings (environment):
#   FIBGUARD_EXTRA_PACKAGES  more Debian package names, separated by spaces, checked and installed like the
#                            list's (checked through dpkg only); for trying this script, or a local need
#
# Exit status: 0 nothing missing (or all installed now), 1 apt-get failed, 2 usage, 4 packages are
# missing and this user cannot install them (not root, or `check`), 5 commands are missing on a
# machine without apt-get/dpkg-query. Deliberately not 3, which the other hack/ scripts use for
# "a prerequisite is missing, skip the tests": a missing package must stop the test command.
set -euo pipefail

# package          commands or files the tests use from it
PACKAGES=(
  "ca-certificates /etc/ssl/certs/ca-certificates.crt" # TLS roots: the Go module proxy, git over https
  "git             git"                                 # the checkout; build-image.sh's dates and revision
  "make            make"                                # the test command itself
  "iproute2        ip"                                  # ip: tests create and read network namespaces
  "iputils-ping    ping"                                # reachability checks inside namespaces
  "procps          sysctl ps"                           # sysctls of the namespaces; daemon checks
  "kmod            modprobe"                            # bridge, veth and nftables modules
  "etcd-server     /usr/bin/etcd"                       # etcd of hack/control-plane.sh (API-server tests, e2e node)
  "openssl         openssl"                             # its CA, serving certificate and service-account key
  "curl            curl"                                # its readiness checks
  "containerd      containerd ctr"                      # the container runtime of the e2e node (hack/local-cluster.sh)
  "runc            runc"                                # its OCI runtime
  "iptables        iptables"                            # kube-proxy inside the node's network namespace
  "nftables        nft"                                 # kube-proxy's nftables mode, in the node's namespace
  "conntrack       conntrack"                           # kube-proxy clears stale conntrack entries with it
  "util-linux      nsenter unshare flock mountpoint"    # the node's namespaces; locks of the hack/ scripts
  "file            file"                                # hack/build-image.sh checks that binaries are static
  # make e2e-kind (hack/kind/): a Docker engine of its own, kind's node image built here
  "docker.io       /usr/sbin/dockerd /usr/bin/docker"   # dockerd in its own namespace (hack/kind/dockerd.sh), Debian's client
  "debootstrap     debootstrap"                         # the node image's Debian root file system (hack/kind/rootfs.sh)
  "busybox-static  busybox"                             # hack/kind/dockerd.sh selftest: an image built from a static busybox
)

me=system-packages
log() { echo "${me}: $*" >&2; }

# `sudo make test` and a plain user's shell may lack the sbin directories
# (nft, conntrack, iptables, modprobe, sysctl live there) or apt-get's.
PATH="${PATH:+${PATH}:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH
export DEBIAN_FRONTEND=noninteractive

# have CMD|/PATH: an executable command on PATH, or a file (executable when in a bin directory).
have() {
  local p
  if [[ "$1" == /* ]]; then
    [[ -f "$1" ]] && { [[ "$1" != */bin/* ]] || [[ -x "$1" ]]; }
  else
    p="$(command -v "$1" 2>/dev/null)" && [[ -x "$p" ]]
  fi
}

mode="${1:-install}"
case "$mode" in
install | check | list) ;;
-h | --help)
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
  ;;
*)
  log "unknown mode ${mode} (install, check or list)"
  exit 2
  ;;
esac
[[ $# -le 1 ]] || {
  log "usage: ${BASH_SOURCE[0]} [install|check|list]"
  exit 2
}

names=() # package names, in order
declare -A probes=()
for entry in "${PACKAGES[@]}"; do
  read -r name rest <<<"$entry"
  names+=("$name")
  probes[$name]="$rest"
done
read -r -a extra <<<"${FIBGUARD_EXTRA_PACKAGES:-}"
for name in "${extra[@]}"; do
  [[ -n "${probes[$name]+set}" ]] && continue
  names+=("$name")
  probes[$name]=""
done

if [[ "$mode" == list ]]; then
  printf '%s\n' "${names[@]}"
  exit 0
fi

# missing_probes NAME: the package's commands and files that are not there.
missing_probes() {
  local p list out=()
  read -r -a list <<<"${probes[$1]}"
  for p in "${list[@]}"; do
    have "$p" || out+=("$p")
  done
  echo "${out[*]}"
}

# ---- a machine without apt: check the commands and files only ---------------
if ! have apt-get || ! have dpkg-query; then
  lacking=()
  for name in "${names[@]}"; do
    m="$(missing_probes "$name")"
    if [[ -z "${probes[$name]}" ]]; then
      lacking+=("${name} (a Debian package; no command to look for)")
    elif [[ -n "$m" ]]; then
      lacking+=("${m// /, } (Debian package: ${name})")
    fi
  done
  if ((${#lacking[@]} == 0)); then
    log "not a Debian/apt machine, but all ${#names[@]} packages' commands are present"
    exit 0
  fi
  log "not a Debian/apt machine (no apt-get or dpkg-query), and the tests need these commands or files:"
  printf '    %s\n' "${lacking[@]}" >&2
  log "install them with this machine's package manager, then run the test command again;"
  log "the Debian package names are in hack/system-packages.sh"
  exit 5
fi

# ---- Debian: dpkg first, the commands as a fallback -------------------------
# installed: dpkg's "install ok installed" for every name at once (one query).
installed() {
  dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null |
    awk '$2 ~ /^.i/ { sub(/:.*/, "", $1); print $1 }' || true
}
check_missing() { # [quiet]: sets missing=(...)
  local name have_pkgs
  have_pkgs=" $(installed | tr '\n' ' ') "
  missing=()
  for name in "${names[@]}"; do
    [[ "$have_pkgs" == *" ${name} "* ]] && continue
    if [[ -n "${probes[$name]}" && -z "$(missing_probes "$name")" ]]; then
      [[ -n "${1:-}" ]] ||
        log "${name}: not installed as a Debian package, but ${probes[$name]// /, } found: using those"
      continue
    fi
    missing+=("$name")
  done
}

missing=()
check_missing
if ((${#missing[@]} == 0)); then
  log "all ${#names[@]} Debian packages the tests need are present"
  exit 0
fi

apt_cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "$mode" == check || $(id -u) -ne 0 ]]; then
  log "missing Debian packages the tests need: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    if have sudo; then
      log "install them with:  sudo sh -c '${apt_cmd}'"
      log "or run the test command as root, which installs them: sudo make test"
    else
      log "install them as root with:  ${apt_cmd}"
      log "or run the test command as root (e.g. after su -), which installs them: make test"
    fi
  else
    log "install them with:  ${apt_cmd}"
    log "or: hack/system-packages.sh install (make test does it first)"
  fi
  exit 4
fi

# ---- root: install --------------------------------------------------------------
log "installing ${missing[*]}"
# Wait for another apt or dpkg run (unattended-upgrades, a parallel make) rather than fail.
apt_opts=(-o DPkg::Lock::Timeout=300)
updated=false
for try in 1 2 3; do
  if apt-get "${apt_opts[@]}" update -qq; then
    updated=true
    break
  fi
  log "apt-get update failed (try ${try}/3)"
  ((try == 3)) || sleep $((try * 5))
done
$updated || log "apt-get update failed 3 times; trying the install with the package lists this machine has"
installed_ok=false
for try in 1 2 3; do
  if apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"; then
    installed_ok=true
    break
  fi
  log "apt-get install failed (try ${try}/3)"
  ((try == 3)) || sleep $((try * 5))
done
if ! $installed_ok; then
  log "could not install: ${missing[*]}"
  log "fix apt (its sources, the network), then run: ${apt_cmd}"
  exit 1
fi

wanted=("${missing[@]}")
check_missing quiet
if ((${#missing[@]})); then
  log "apt-get succeeded but these are still not installed: ${missing[*]}"
  exit 1
fi
log "installed ${wanted[*]}; all ${#names[@]} Debian packages the tests need are present"
