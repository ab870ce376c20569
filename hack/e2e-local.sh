#!/usr/bin/env bash
# The e2e suite (test/e2e) on a real local node: `make e2e` runs this.
# Builds fibguard's binaries, its image (hack/build-image.sh) and a second
# build of it for the upgrade scenario, and the suite; brings the node of
# hack/local-cluster.sh up and loads both images into it; runs the suite on
# the node (its network and mount namespaces: the API server, the pods and
# the standard CNI paths are there), where it installs fibguard with
# `kubectl apply -k manifests/base` as users do; and takes the node down
# again even when the suite fails or is interrupted.
#
# Usage:  hack/e2e-local.sh [go test flags for the suite, e.g. -test.run 'TestE2E/3']
#
# Settings (environment):
#   FIBGUARD_E2E_KEEP=1   leave the node up afterwards (hack/local-cluster.sh down stops it)
#   FIBGUARD_E2E_INSTALL=process
#                         run fibguard-install as a process on the node instead of the DaemonSet
#                         (for debugging the installer; skips the upgrade scenario)
#   GO                    Go toolchain; default `go` on PATH, else /usr/local/go/bin/go
#
# Exit status: the suite's; 3 when a prerequisite of the node is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
go="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
out="${root}/bin/e2e"

log() { echo "e2e-local: $*" >&2; }

down() {
  local rc=$?
  if [[ "${FIBGUARD_E2E_KEEP:-0}" == 1 ]]; then
    log "FIBGUARD_E2E_KEEP=1: the node stays up (hack/local-cluster.sh down)"
  else
    "${root}/hack/local-cluster.sh" down || rc=1
    # down must leave nothing behind: part of what this run checks.
    if ! "${root}/hack/local-cluster.sh" leftovers >&2; then
      log "FAIL: hack/local-cluster.sh down left the above behind"
      rc=1
    fi
  fi
  exit "$rc"
}

# The image manifests/base deploys, and another build of it to upgrade to.
image=ghcr.io/fibguard/fibguard:v0.1.0
upgrade_image=ghcr.io/fibguard/fibguard:v0.1.1-e2e

mkdir -p "$out"
log "building fibguard's binaries, its images and the suite into ${out}"
(cd "$root" && CGO_ENABLED=0 "$go" build -trimpath -o "${out}/" ./cmd/...)
(cd "$root" && "$go" test -c -tags e2e -o "${out}/e2e.test" ./test/e2e)
IMAGE="$image" "${root}/hack/build-image.sh" "${out}/image.tar" >/dev/null 2>"${out}/build-image.log" ||
  { cat "${out}/build-image.log" >&2; exit 1; }
IMAGE="$upgrade_image" "${root}/hack/build-image.sh" "${out}/upgrade-image.tar" >/dev/null 2>>"${out}/build-image.log" ||
  { cat "${out}/build-image.log" >&2; exit 1; }

trap down EXIT
trap 'exit 130' INT TERM
env_file="$("${root}/hack/local-cluster.sh" up | tail -n1)"
set -a
# shellcheck disable=SC1090 # written by hack/local-cluster.sh up
. "$env_file"
set +a
"${root}/hack/local-cluster.sh" load-image "${out}/image.tar"
"${root}/hack/local-cluster.sh" load-image "${out}/upgrade-image.tar"
export FIBGUARD_E2E_BIN_DIR="$out" FIBGUARD_E2E_IMAGE="$image" FIBGUARD_E2E_UPGRADE_IMAGE="$upgrade_image"
log "running the suite on the node"
# From the repository root, so the suite finds manifests/ as it would with go test.
cd "$root"
"${root}/hack/local-cluster.sh" exec "${out}/e2e.test" -test.v -test.count=1 -test.timeout=40m "$@"
