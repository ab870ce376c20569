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
#   3. node    the base plus Kubernetes built here (hack/kind/k8s.sh): kubeadm, kubelet,
#              kubectl, crictl, /kind/version and the images kubeadm asks for imported into
#              containerd, committed as fibguard.local/kind-node:v1.37.2 ($FIBGUARD_KIND_NODE_IMAGE)
#
# Usage:
#   hack/kind/node-image.sh base          build or reuse the base image; prints its name
#   hack/kind/node-image.sh node          build or reuse the node image (base + Kubernetes); prints its name
#   hack/kind/node-image.sh test [IMAGE]  run IMAGE (default: the base) as kind runs a node and wait
#                                         for `systemctl is-system-running`; prints the failed units
#
# The Docker engine is $DOCKER_HOST when set, else hack/kind/dockerd.sh's socket
# (`hack/kind/dockerd.sh up` first).
#
# Exit status: 0; 1 on failure; 3 when a prerequisite is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard/kind"
docker_bin="${DOCKER:-/usr/bin/docker}"
# Bump when customize or cmd_node change what goes into an image: the image
# keys hash these, the inputs and the files, not this whole script (so that
# an edit elsewhere here does not rebuild a gigabyte).
BASE_FORMAT=1
NODE_FORMAT=1
: "${DOCKER_HOST:=unix:///run/${FIBGUARD_KIND_NETNS:-fibguard-kind}/docker.sock}"
export DOCKER_HOST

log_prefix=kind-node-image
# shellcheck source=hack/lib/common.sh
. "${here}/../lib/common.sh"

docker() { "$docker_bin" "$@"; }

need_engine() {
  ((EUID == 0)) || missing_prerequisite "must run as root"
  [[ -x "$docker_bin" ]] || missing_prerequisite "${docker_bin} not found (apt-get install docker.io)"
  docker version >/dev/null 2>&1 || die "no Docker engine at ${DOCKER_HOST}: run hack/kind/dockerd.sh up"
}

# hash_inputs FILE|DIR...: a short hash of the files' contents, names and
# modes; names relative to each argument's parent directory, so that the
# same files in another checkout give the same key.
hash_inputs() {
  local p
  for p in "$@"; do
    (cd "$(dirname "$p")" && find "$(basename "$p")" -type f -printf '%m %p\n' | sort &&
      find "$(basename "$p")" -type f -print0 | sort -z | xargs -0 sha256sum)
  done | sha256sum | cut -c1-12
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
  key="$( (echo "base ${BASE_FORMAT}" && basename "$tarball" && hash_inputs "${here}/node") | sha256sum | cut -c1-12)"
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

# cmd_node: the node image: the base plus Kubernetes (hack/kind/k8s.sh), the
# way kind's `kind build node-image` makes one: a build container of the
# base (entrypoint replaced by sleep, so nothing of the entrypoint's first
# boot ends up in the image), the binaries copied in, /kind/version, the
# images imported into containerd's k8s.io namespace (unpacked at first use,
# pinned), then `docker commit` with kind's entrypoint back.
cmd_node() {
  need_engine
  local base k8s key ref build version tar img b have work missing=()
  base="$(cmd_base | tail -n1)"
  k8s="$("${here}/k8s.sh" | tail -n1)"
  version="$(cat "${k8s}/version")"
  key="$( (echo "node ${NODE_FORMAT} ${base}" && hash_inputs "${here}/k8s.sh" && sha256sum "${k8s}/bin/"* "${k8s}/images/"*) | sha256sum | cut -c1-12)"
  ref="${FIBGUARD_KIND_NODE_IMAGE:-fibguard.local/kind-node:${version}}"
  if [[ "$(docker image inspect -f '{{index .Config.Labels "dev.fibguard.kind.inputs"}}' "$ref" 2>/dev/null)" == "$key" ]]; then
    echo "$ref"
    return 0
  fi
  log "building ${ref} (Kubernetes ${version}) on ${base}"
  build=fibguard-kind-node-build
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now
  trap "docker rm -f -v '${build}' >/dev/null 2>&1 || true; rm -rf '${work}'" EXIT
  proxy_image "$base" "$k8s" "$version" "${work}/kube-proxy.tar"

  docker rm -f -v "$build" >/dev/null 2>&1 || true
  docker run -d --name "$build" --privileged --tmpfs /run --tmpfs /tmp \
    --entrypoint /usr/bin/sleep "$base" infinity >/dev/null
  for b in kubeadm kubelet kubectl; do
    docker cp -L "${k8s}/bin/${b}" "${build}:/usr/bin/${b}"
  done
  docker cp -L "${k8s}/bin/crictl" "${build}:/usr/local/bin/crictl"
  docker exec "$build" sh -c "chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl &&
    chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl && echo ${version} >/kind/version"
  docker exec -d "$build" sh -c 'exec /usr/bin/containerd >/tmp/containerd.log 2>&1'
  for _ in $(seq 60); do
    docker exec "$build" ctr version >/dev/null 2>&1 && break
    sleep 0.5
  done
  for tar in "${k8s}/images/"*.tar "${work}/kube-proxy.tar"; do
    docker exec -i "$build" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - <"$tar" >/dev/null
  done
  # Every image kubeadm will ask for must be there: nothing can be pulled.
  have="$(docker exec "$build" ctr --namespace=k8s.io images ls -q)"
  while read -r img; do
    grep -qxF "$img" <<<"$have" || missing+=("$img")
  done < <(docker exec "$build" kubeadm config images list --kubernetes-version "$version" 2>/dev/null)
  ((${#missing[@]} == 0)) || die "images missing from the node: ${missing[*]}"
  # shellcheck disable=SC2016 # runs in the container
  docker exec "$build" sh -c 'kill $(pidof containerd); while pidof containerd >/dev/null; do sleep 0.1; done; rm -rf /tmp/*'
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change 'CMD []' \
    --change "LABEL dev.fibguard.kind.inputs=${key}" \
    "$build" "$ref" >/dev/null
  # The image this one replaces, now untagged, only takes space.
  docker image prune -f >/dev/null || true
  log "built ${ref}"
  echo "$ref"
}

# proxy_image BASE K8S VERSION ARCHIVE: kube-proxy's image, whose program
# runs iptables, ip6tables and conntrack: the node base (Debian's iptables,
# the backend the node's alternatives choose) with the binary added.
proxy_image() {
  local ctx="${4%.tar}.context" ref="registry.k8s.io/kube-proxy:${3}"
  mkdir -p "$ctx"
  cp -L "${2}/bin/kube-proxy" "${ctx}/kube-proxy"
  printf 'FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\nENTRYPOINT ["/usr/local/bin/kube-proxy"]\nCMD []\n' "$1" >"${ctx}/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$ctx" >/dev/null
  docker save -o "$4" "$ref"
  docker rmi "$ref" >/dev/null
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
node) cmd_node ;;
test)
  shift
  cmd_test "$@"
  ;;
*)
  sed -n '/^# Usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
