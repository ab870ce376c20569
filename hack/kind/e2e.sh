#!/usr/bin/env bash
# hack/kind-e2e.sh on a machine without a registry: its local-image path
# (FIBGUARD_KIND_LOCAL_IMAGE=1, or chosen by hack/kind-e2e.sh when neither
# kind nor a registry is reachable). Everything kind needs is made here:
#
#   1. a Docker engine of its own (hack/kind/dockerd.sh up): own network and
#      mount namespaces, data root and socket, runcwrap as default runtime
#   2. the node image (hack/kind/node-image.sh node): Debian + systemd +
#      containerd, Kubernetes v1.37.2 built from source, its images imported
#   3. kind v0.33.0 built from the module proxy (the version go.mod pins)
#   4. hack/kind-e2e.sh itself, run inside the engine's network namespace
#      (kind publishes the API server on 127.0.0.1 there) with KIND,
#      KIND_NODE_IMAGE, DOCKER_HOST and kubectl set
#   5. always: hack/kind/dockerd.sh down (the cluster's containers, dockerd,
#      its containerd, the namespace, cgroups), then a check that nothing is
#      left (exit 1 if anything is)
#
# Usage:  hack/kind/e2e.sh [go test flags]   (normally through hack/kind-e2e.sh)
#
# Exit status: the suite's; 1 when something is left behind; 3 when a
# prerequisite is missing (not root, no dockerd, debootstrap or Go).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard"
KIND_VERSION=v0.33.0 # go.mod's sigs.k8s.io/kind

log_prefix="kind-e2e (local image)"
# shellcheck source=hack/lib/common.sh
. "${here}/../lib/common.sh"

((EUID == 0)) || missing_prerequisite "must run as root (network namespaces, dockerd, debootstrap)"
go="$(go_cmd)"

# shellcheck disable=SC2317 # the EXIT trap runs it
down() {
  local rc=$?
  "${here}/dockerd.sh" down || rc=1
  if ! "${here}/dockerd.sh" leftovers; then
    log "left behind after down (above)"
    rc=1
  fi
  exit "$rc"
}

start=$(date +%s)
env_file="$("${here}/dockerd.sh" up | tail -n1)"
trap down EXIT
# shellcheck disable=SC1090 # written by dockerd.sh up
source "$env_file"
export DOCKER_HOST

image="$("${here}/node-image.sh" node | tail -n1)"
log "node image ${image} ready after $(($(date +%s) - start))s"

kind="${cache}/kind/bin/kind-${KIND_VERSION}"
if [[ ! -x "$kind" ]]; then
  log "building kind ${KIND_VERSION}"
  mkdir -p "${cache}/kind/bin/.gobin"
  env GOBIN="${cache}/kind/bin/.gobin" GOWORK=off GOFLAGS= CGO_ENABLED=0 nice -n 10 \
    "$go" install "sigs.k8s.io/kind@${KIND_VERSION}" ||
    missing_prerequisite "building kind failed (is the Go module proxy reachable?)"
  mv -f "${cache}/kind/bin/.gobin/kind" "$kind"
fi
k8s="$("${here}/k8s.sh" | tail -n1)"

# What hack/kind-e2e.sh builds itself needs the network (module proxy) it
# will not have inside the namespace: build it here first, into the caches
# it reads.
"${root}/hack/cni-plugins.sh" >/dev/null
"${root}/hack/local-cluster.sh" images >/dev/null
(cd "$root" && env GOWORK=off "$go" test -tags e2e -count=1 -run '^$' ./test/e2e >/dev/null)

log "running hack/kind-e2e.sh in the engine's network namespace ${FIBGUARD_KIND_NETNS}"
rc=0
"${here}/dockerd.sh" exec env \
  FIBGUARD_KIND_LOCAL_IMAGE=inside \
  KIND="$kind" KIND_NODE_IMAGE="$image" DOCKER_HOST="$DOCKER_HOST" \
  PATH="${k8s}/bin:${PATH}" GOFLAGS="${GOFLAGS:-} -mod=readonly" GOPROXY=off \
  "${root}/hack/kind-e2e.sh" "$@" || rc=$?
log "hack/kind-e2e.sh exited ${rc} after $(($(date +%s) - start))s in all"
exit "$rc"
