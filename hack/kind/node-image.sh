#!/usr/bin/env bash
# A kind node image built on this machine, without a registry: for
# hack/kind-e2e.sh with FIBGUARD_KIND_LOCAL_IMAGE=1 (kind's own images,
# kindest/node, come from a registry this project's CI machine cannot reach).
#
# What kind expects of a node image (its contract: sigs.k8s.io/kind v0.33.0,
# images/base and pkg/build/nodeimage): systemd as PID 1 behind kind's
# entrypoint (`/usr/local/bin/entrypoint /sbin/init`, ENV container=docker,
# STOPSIGNAL SIGRTMIN+3); containerd with the CRI plugin, runc and crictl;
# kubeadm, kubelet and kubectl in /usr/bin with kubelet's systemd units;
# /kind/version; the control-plane images already in containerd's k8s.io
# namespace. This script makes it in layers, each cached:
#
#   1. rootfs  Debian bookworm by debootstrap from the machine's apt mirror,
#              with systemd, containerd and runc (hack/kind/rootfs.sh; a tarball
#              in ~/.cache/fibguard/kind)
#   2. base    that root file system plus the node's files (hack/kind/node/:
#              our entrypoint, containerd's configuration, the units), imported
#              with `docker import` into the engine of hack/kind/dockerd.sh as
#              fibguard.local/kind-base:KEY, where KEY hashes its inputs
#
# Usage:
#   hack/kind/node-image.sh base          build or reuse the base image; prints its name
#   hack/kind/node-image.sh test [IMAGE]  run IMAGE (default: the base) as kind runs a node and wait
#                                         for `systemctl is-system-running`; prints the failed units
#
# The Docker engine is $DOCKER_HOST when it answers, else hack/kind/dockerd.sh's
# (which must be up).
#
# Exit status: 0; 1 on failure; 3 when a prerequisite is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard/kind"
docker_bin="${DOCKER:-/usr/bin/docker}"
: "${DOCKER_HOST:=unix:///run/${FIBGUARD_KIND_NETNS:-fibguard-kind}/docker.sock}"
export DOCKER_HOST

log() { echo "kind-node-image: $*" >&2; }
die() {
  log "$*"
  exit 1
}
missing_prerequisite() {
  log "$*"
  exit 3
}

docker() { "$docker_bin" "$@"; }

need_engine() {
  ((EUID == 0)) || missing_prerequisite "must run as root"
  [[ -x "$docker_bin" ]] || missing_prerequisite "${docker_bin} not found (apt-get install docker.io)"
  docker version >/dev/null 2>&1 || die "no Docker engine at ${DOCKER_HOST}: run hack/kind/dockerd.sh up"
}

# hash_inputs FILE|DIR...: a short hash of the contents, names and modes.
hash_inputs() {
  find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12
}

# customize ROOT: the node's files and kind's adjustments to a fresh root
# file system (what kind's base image Dockerfile does after installing its
# packages).
customize() {
  local root=$1
  cp -a "${here}/node/." "${root}/"
  chmod 0755 "${root}/usr/local/bin/entrypoint" "${root}/kind" "${root}/kind/bin" "${root}/kind/bin/"*
  # Only the units a node needs start: none of Debian's defaults, which
  # would touch the host's devices, binfmt or kernel log from a container.
  rm -f "${root}/lib/systemd/system/multi-user.target.wants/"* \
    "${root}/etc/systemd/system/"*.wants/* \
    "${root}/lib/systemd/system/local-fs.target.wants/"* \
    "${root}/lib/systemd/system/sockets.target.wants/"*udev* \
    "${root}/lib/systemd/system/sockets.target.wants/"*initctl* \
    "${root}/lib/systemd/system/basic.target.wants/"* \
    "${root}/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service"
  echo "ReadKMsg=no" >>"${root}/etc/systemd/journald.conf"
  mkdir -p "${root}/etc/systemd/system/multi-user.target.wants"
  local unit
  for unit in containerd kubelet undo-mount-hacks; do
    ln -sf "/etc/systemd/system/${unit}.service" "${root}/etc/systemd/system/multi-user.target.wants/${unit}.service"
  done
  ln -sf /dev/null "${root}/etc/systemd/system/systemd-binfmt.service" # binfmt_misc is the host's
  mkdir -p "${root}/etc/kubernetes/manifests" "${root}/opt/cni/bin"
  # containerd's base OCI spec for pods: its defaults, without rlimits (the
  # runtime's own apply) and with the hook that gives each container the
  # node's product_name and product_uuid.
  chroot "$root" /usr/bin/ctr oci spec |
    jq '.hooks.createContainer += [{"path": "/kind/bin/mount-product-files.sh"}] | del(.process.rlimits)' \
      >"${root}/etc/containerd/cri-base.json"
  rm -rf "${root}/usr/share/doc/"* "${root}/usr/share/man/"* "${root}/var/lib/apt/lists/"* \
    "${root}/var/cache/apt/"*.bin "${root}/var/log/"*.log
}

cmd_base() {
  need_engine
  command -v jq >/dev/null || missing_prerequisite "jq not found (apt-get install jq)"
  local tarball key ref work
  tarball="$("${here}/rootfs.sh" | tail -n1)"
  key="$( (basename "$tarball" && hash_inputs "${here}/node" "${here}/node-image.sh") | sha256sum | cut -c1-12)"
  ref="fibguard.local/kind-base:${key}"
  if docker image inspect "$ref" >/dev/null 2>&1; then
    echo "$ref"
    return 0
  fi
  log "building ${ref} from ${tarball}"
  mkdir -p "$cache"
  work="$(mktemp -d "${cache}/.base.XXXXXX")"
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '${work}'" EXIT
  mkdir "${work}/root"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "${work}/root" -xf "$tarball"
  customize "${work}/root"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "${work}/root" -c . |
    docker import - "${ref}-rootfs" >/dev/null
  # The image configuration kind's node images have; `docker import --change`
  # cannot set STOPSIGNAL, a Dockerfile without RUN can (no container runs).
  mkdir "${work}/context"
  cat >"${work}/context/Dockerfile" <<EOF
FROM ${ref}-rootfs
# systemd: https://systemd.io/CONTAINER_INTERFACE/
ENV container=docker
# systemd exits on SIGRTMIN+3; SIGTERM would make it re-execute itself.
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
LABEL dev.fibguard.kind.inputs=${key}
EOF
  DOCKER_BUILDKIT=0 docker build -q -t "$ref" "${work}/context" >/dev/null
  docker rmi "${ref}-rootfs" >/dev/null
  # Older bases (other inputs) only take space in the data root.
  local old
  for old in $(docker images fibguard.local/kind-base --format "{{.Repository}}:{{.Tag}}"); do
    if [[ "$old" != "$ref" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
  done
  log "built ${ref}"
  echo "$ref"
}

# cmd_test IMAGE: run the image with the arguments kind gives a node
# container (pkg/cluster/internal/providers/docker/provision.go), wait for
# systemd, report, remove.
cmd_test() {
  need_engine
  local image=${1:-} name=fibguard-kind-node-test state="" rc=0 _
  [[ -n "$image" ]] || image="$(cmd_base | tail -n1)"
  docker rm -f -v "$name" >/dev/null 2>&1 || true
  docker network rm "$name" >/dev/null 2>&1 || true
  # A user-defined network with IPv6, as kind's "kind" network: Docker's
  # embedded DNS, whose address the entrypoint rewrites.
  docker network create --ipv6 --subnet fc00:f853:ccd:e793::/64 "$name" >/dev/null
  docker run --detach --tty --name "$name" --hostname "$name" --net "$name" \
    --restart=on-failure:1 --init=false --cgroupns=private \
    --privileged --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /tmp --tmpfs /run --volume /var --volume /lib/modules:/lib/modules:ro \
    "$image" >/dev/null
  for _ in $(seq 120); do
    [[ "$(docker exec "$name" cat /proc/1/comm 2>/dev/null)" == systemd ]] || {
      sleep 0.5
      continue
    }
    state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    [[ "$state" == running || "$state" == degraded ]] && break
    sleep 0.5
  done
  docker logs "$name" 2>&1 | grep -E "^(INFO|WARN|ERROR):" >&2 || true
  log "systemctl is-system-running: ${state:-no answer}"
  docker exec "$name" systemctl list-units --failed --no-legend --plain >&2 || true
  if [[ "$state" != running ]]; then
    rc=1
    docker logs "$name" 2>&1 | tail -n 40 >&2
  fi
  docker exec "$name" systemctl is-active containerd >&2 || rc=1
  docker rm -f -v "$name" >/dev/null
  docker network rm "$name" >/dev/null
  return $rc
}

case "${1:-}" in
base) cmd_base ;;
test)
  shift
  cmd_test "$@"
  ;;
*)
  sed -n '/^# Usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
