#!/usr/bin/env bash
# The e2e suite (test/e2e) on a real local node: `make e2e` runs this.
# Brings the node of hack/local-cluster.sh up, builds fibguard's binaries and
# the suite, runs the suite inside the node's network namespace (where the
# API server and the pods are reachable), and takes the node down again even
# when the suite fails or is interrupted.
#
# Usage:  hack/e2e-local.sh [go test flags for the suite, e.g. -test.run 'TestE2E/3']
#
# Settings (environment):
#   FIBGUARD_E2E_KEEP=1   leave the node up afterwards (hack/local-cluster.sh down stops it)
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

mkdir -p "$out"
log "building fibguard's binaries and the suite into ${out}"
(cd "$root" && CGO_ENABLED=0 "$go" build -trimpath -o "${out}/" ./cmd/...)
(cd "$root" && "$go" test -c -tags e2e -o "${out}/e2e.test" ./test/e2e)

trap down EXIT
trap 'exit 130' INT TERM
env_file="$("${root}/hack/local-cluster.sh" up | tail -n1)"
set -a
# shellcheck disable=SC1090 # written by hack/local-cluster.sh up
. "$env_file"
set +a
export FIBGUARD_E2E_BIN_DIR="$out"
log "running the suite in ${FIBGUARD_E2E_NETNS}"
# From the repository root, so the suite finds manifests/ as it would with go test.
cd "$root"
nsenter --net="$FIBGUARD_E2E_NETNS" -- "${out}/e2e.test" -test.v -test.count=1 -test.timeout=40m "$@"
