#!/usr/bin/env bash
# A Debian root file system for kind's node image, made with debootstrap
# from the machine's own apt mirror, cached as a tarball:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/fibguard/kind/rootfs-SUITE-KEY.tar
# where KEY hashes the suite, the mirror and the package list, so a change of
# any of them makes a new one. Prints the tarball's path. hack/kind/node-image.sh
# runs it; it runs alone too.
#
# The packages are those a kind node needs besides Kubernetes (what kind's
# own base image, sigs.k8s.io/kind images/base/Dockerfile, installs, less NFS,
# iSCSI and fuse-overlayfs): systemd as init, containerd and runc from Debian,
# the tools kubelet and kube-proxy call (iptables, nftables, conntrack,
# iproute2, mount, ...) and jq, curl, pigz. Without Recommends, as kind does.
#
# debootstrap mounts /proc and /sys inside the target while it installs; it
# runs in a mount namespace of its own, so that those mounts never reach the
# machine's mount table, even when it fails halfway.
#
# Settings (environment):
#   FIBGUARD_KIND_SUITE   Debian suite (default bookworm)
#   FIBGUARD_KIND_MIRROR  mirror (default: the first Debian URI in the machine's apt sources)
#
# Exit status: 0; 1 on failure; 3 when debootstrap is missing or not root.
set -euo pipefail

suite="${FIBGUARD_KIND_SUITE:-bookworm}"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard/kind"
packages=(
  systemd systemd-sysv dbus
  containerd runc
  conntrack iptables nftables iproute2 ethtool util-linux mount kmod ebtables socat
  libseccomp2 pigz e2fsprogs
  bash ca-certificates curl jq procps less
)

log_prefix=kind-rootfs
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

((EUID == 0)) || missing_prerequisite "must run as root (debootstrap)"
command -v debootstrap >/dev/null || missing_prerequisite "debootstrap not found (apt-get install debootstrap)"

# mirror prints the first Debian archive URI of the machine's apt sources
# (deb822 .sources files or the one-line sources.list format).
mirror() {
  local m
  m="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')"
  [[ -n "$m" ]] || m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}')"
  echo "${m:-http://deb.debian.org/debian}"
}

url="${FIBGUARD_KIND_MIRROR:-$(mirror)}"
key="$(printf '%s\n' "$suite" "$url" "${packages[@]}" | sha256sum | cut -c1-12)"
tarball="${cache}/rootfs-${suite}-${key}.tar"
if [[ -s "$tarball" ]]; then
  echo "$tarball"
  exit 0
fi

mkdir -p "$cache"
work="$(mktemp -d "${cache}/.rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "debootstrap ${suite} from ${url} (a few minutes; cached as ${tarball})"
inc="$(
  IFS=,
  echo "${packages[*]}"
)"
# A private mount namespace: debootstrap's /proc, /sys and /dev/pts mounts in
# the target disappear with it.
if ! unshare --mount --propagation private -- \
  debootstrap --variant=minbase --include="$inc" --merged-usr "$suite" "${work}/root" "$url" \
  >"${work}/debootstrap.log" 2>&1; then
  log "debootstrap failed; last lines of its log:"
  tail -n 30 "${work}/debootstrap.log" >&2
  tail -n 30 "${work}/root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  exit 1
fi
rm -rf "${work}/root/var/cache/apt/archives/"*.deb "${work}/root/var/lib/apt/lists/"*_Packages
tar --numeric-owner --xattrs --xattrs-include='*' -C "${work}/root" -cf "${work}/rootfs.tar" .
mv -f "${work}/rootfs.tar" "$tarball"
log "wrote ${tarball} ($(du -h "$tarball" | cut -f1))"
echo "$tarball"
