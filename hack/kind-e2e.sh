#!/usr/bin/env bash
# The e2e suite (test/e2e) on a kind cluster, for machines with a container
# engine (Docker or Podman) and kind, which pulls its node image (kindest/node)
# from its registry. Where there is no registry (this project's CI machine),
# FIBGUARD_KIND_LOCAL_IMAGE=1 makes everything here instead: hack/kind/e2e.sh
# starts a Docker engine of its own, builds a node image from source and kind
# from the Go module proxy, and runs this script again inside that engine's
# network namespace (see docs/e2e.md). `make e2e` runs the same suite on a
# real local node (hack/local-cluster.sh).
#
# Steps: create the cluster from test/e2e/kind-config.yaml (a control plane
# and a worker, no default CNI); put the reference bridge/host-local/loopback
# plugins (hack/cni-plugins.sh) on every node and the suite's healthy network
# (the node's pod CIDR) as the primary conflist, so the nodes become Ready; build fibguard's image (hack/build-image.sh) and the
# probe image, `kind load image-archive` both; run the suite with
# FIBGUARD_E2E_INSTALL=manifests (the suite applies manifests/ itself, and
# the DaemonSet installs fibguard) on every node (FIBGUARD_E2E_NODES); on failure export the cluster's logs;
# always delete the cluster.
#
# Usage:  hack/kind-e2e.sh [go test flags, e.g. -run 'TestE2E/3']
#
# Settings (environment):
#   KIND                 kind binary (default: kind on PATH)
#   KIND_CLUSTER_NAME    cluster name (default fibguard-e2e)
#   KIND_NODE_IMAGE      node image for `kind create cluster --image` (default: kind's own)
#   KIND_EXPERIMENTAL_PROVIDER=podman   kind's switch to Podman; the node commands follow it
#   ARTIFACTS            where logs go on failure (default bin/kind-logs)
#   FIBGUARD_E2E_KEEP=1  keep the cluster afterwards
#   FIBGUARD_KIND_LOCAL_IMAGE=1  build the node image, kind and a Docker engine here (no registry needed);
#                        chosen by itself, and said so, when kind or the engine is missing and no
#                        registry answers; =0 never
#
# Exit status: the suite's; 3 when kind, kubectl or the container engine is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
go="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
kind="${KIND:-kind}"
name="${KIND_CLUSTER_NAME:-fibguard-e2e}"
artifacts="${ARTIFACTS:-${root}/bin/kind-logs}"
engine=docker
[[ "${KIND_EXPERIMENTAL_PROVIDER:-}" == podman ]] && engine=podman
work="$(mktemp -d)"
kubeconfig="${work}/kubeconfig"

log_prefix="kind-e2e"
# shellcheck source=hack/lib/common.sh
. "${root}/hack/lib/common.sh"

# registry_reachable: whether Docker Hub, where kindest/node lives, answers (any HTTP status).
registry_reachable() {
  command -v curl >/dev/null || return 0 # cannot tell: assume it does
  [[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null)" != 000 ]]
}

case "${FIBGUARD_KIND_LOCAL_IMAGE:-}" in
1)
  log "FIBGUARD_KIND_LOCAL_IMAGE=1: node image, kind and Docker engine built here (hack/kind/e2e.sh)"
  rm -rf "$work"
  exec "${root}/hack/kind/e2e.sh" "$@"
  ;;
"")
  if ! { command -v "$kind" && command -v "$engine" && "$engine" info; } >/dev/null 2>&1 && ! registry_reachable; then
    log "kind or ${engine} missing and no registry reachable: using the local-image path (FIBGUARD_KIND_LOCAL_IMAGE=1; =0 to refuse)"
    rm -rf "$work"
    exec "${root}/hack/kind/e2e.sh" "$@"
  fi
  ;;
esac

command -v "$kind" >/dev/null || missing_prerequisite "kind not found (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
command -v kubectl >/dev/null || missing_prerequisite "kubectl not found"
command -v "$engine" >/dev/null || missing_prerequisite "${engine} not found"
"$engine" info >/dev/null 2>&1 || missing_prerequisite "${engine} does not answer: kind needs a running container engine"

cleanup() {
  local rc=$?
  if ((rc != 0)); then
    log "failed (exit ${rc}); exporting logs to ${artifacts}"
    "$kind" export logs "$artifacts" --name "$name" >/dev/null 2>&1 || log "kind export logs failed"
  fi
  if [[ "${FIBGUARD_E2E_KEEP:-0}" == 1 ]]; then
    log "FIBGUARD_E2E_KEEP=1: cluster ${name} kept (kind delete cluster --name ${name})"
  else
    "$kind" delete cluster --name "$name" >/dev/null 2>&1 || log "kind delete cluster failed"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

create=(create cluster --name "$name" --config "${root}/test/e2e/kind-config.yaml" --kubeconfig "$kubeconfig")
[[ -n "${KIND_NODE_IMAGE:-}" ]] && create+=(--image "$KIND_NODE_IMAGE")
log "creating cluster ${name}"
"$kind" "${create[@]}"

# The suite's healthy network on each node (test/e2e/network_test.go
# healthyNetwork: the node's pod CIDR, its first address the bridge's), so
# that the nodes report their network ready before the suite starts.
healthy() { # healthy SUBNET GATEWAY
  cat <<JSON
{
  "cniVersion": "1.0.0",
  "name": "fibguard-e2e",
  "plugins": [
    {
      "bridge": "fge2e0",
      "ipMasq": false,
      "ipam": {
        "ranges": [[{"gateway": "$2", "subnet": "$1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "type": "host-local"
      },
      "isGateway": true,
      "type": "bridge"
    }
  ]
}
JSON
}
# pod_cidr NODE: the node's pod CIDR, once kube-controller-manager has
# allocated it.
pod_cidr() {
  local cidr="" i
  for ((i = 0; i < 120; i++)); do
    cidr="$(kubectl --kubeconfig "$kubeconfig" get node "$1" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)"
    [[ -n "$cidr" ]] && break
    sleep 0.5
  done
  [[ -n "$cidr" ]] || { log "node $1 has no pod CIDR after 60s"; return 1; }
  echo "$cidr"
}
plugins="$("${root}/hack/cni-plugins.sh" | tail -n1)"
# The control plane first, then the workers in name order.
mapfile -t nodes < <("$kind" get nodes --name "$name" | sort | awk '/control-plane/ {print; next} {w[++n] = $0} END {for (i = 1; i <= n; i++) print w[i]}')
for node in "${nodes[@]}"; do
  for p in bridge host-local loopback; do
    "$engine" cp "${plugins}/${p}" "${node}:/opt/cni/bin/${p}"
  done
  cidr="$(pod_cidr "$node")"
  net="${cidr%/*}"
  healthy "$cidr" "${net%.*}.$((${net##*.} + 1))" | "$engine" exec -i "$node" sh -c 'mkdir -p /etc/cni/net.d &&
    cat > /etc/cni/net.d/.10-fibguard-e2e.conflist.tmp &&
    mv -f /etc/cni/net.d/.10-fibguard-e2e.conflist.tmp /etc/cni/net.d/10-fibguard-e2e.conflist'
done
kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=5m

log "building and loading images"
image="$("${root}/hack/build-image.sh" "${work}/fibguard-image.tar" | tail -n1)"
"$kind" load image-archive "$image" --name "$name"
# A second build, another tag: the image the upgrade scenario rolls out.
upgrade_image=ghcr.io/fibguard/fibguard:v0.1.1-e2e
upgrade="$(IMAGE="$upgrade_image" "${root}/hack/build-image.sh" "${work}/fibguard-upgrade-image.tar" | tail -n1)"
"$kind" load image-archive "$upgrade" --name "$name"
images="$("${root}/hack/local-cluster.sh" images | tail -n1)"
"$kind" load image-archive "${images}/probe.tar" --name "$name"

log "running the suite on ${nodes[*]}"
cd "$root"
FIBGUARD_E2E_KUBECONFIG="$kubeconfig" \
  FIBGUARD_E2E_NODES="${nodes[*]}" \
  FIBGUARD_E2E_NODE_EXEC="${engine} exec -i {node}" \
  FIBGUARD_E2E_INSTALL=manifests \
  FIBGUARD_E2E_UPGRADE_IMAGE="$upgrade_image" \
  FIBGUARD_E2E_RESTART="${engine} exec {node} systemctl restart containerd kubelet" \
  FIBGUARD_E2E_CRICTL=crictl \
  FIBGUARD_E2E_KUBECTL="$(command -v kubectl)" \
  "$go" test -tags e2e -count=1 -v -timeout 40m ./test/e2e "$@"
