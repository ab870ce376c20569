#!/usr/bin/env bash
# Kubernetes for the kind node image (hack/kind/node-image.sh), built here
# from source through the Go module proxy, at the versions kubeadm v1.37.2
# asks for: no registry is needed. Prints the directory that holds
#   bin/     kubeadm kubelet kubectl crictl (copied into the node)
#   images/  one archive per image, named as kubeadm expects them:
#            registry.k8s.io/{kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy}:v1.37.2,
#            registry.k8s.io/etcd:3.7.0-0, registry.k8s.io/coredns/coredns:v1.14.6,
#            registry.k8s.io/pause:3.10.2
#   version  the Kubernetes version (/kind/version in the node)
#
# Where each comes from:
#   - kubelet, kubectl, kube-apiserver, kube-controller-manager, kube-scheduler,
#     kube-proxy: hack/control-plane.sh build (hack/k8sbuild, shared cache
#     ~/.cache/fibguard/k8s/v1.37.2)
#   - kubeadm: the same module and flags, into the same cache; built from a
#     copy of hack/k8sbuild whose go.sum also has kubeadm's few extra modules
#     (checked against the Go checksum database), so hack/k8sbuild is unchanged
#   - etcd: go.etcd.io/etcd/server/v3 v3.7.0 (hack/kind/etcd); CoreDNS:
#     github.com/coredns/coredns v1.14.6 (go install); crictl:
#     sigs.k8s.io/cri-tools v1.37.0 (go install, or hack/local-cluster.sh's cache)
#   - the images of the Go programs: hack/imagebuild, one layer on an empty
#     base (all are static: CGO_ENABLED=0); pause from test/e2e/images/pause.
#     kube-proxy's image also needs iptables, ip6tables and conntrack, which
#     it runs: it is built with `docker build` on the node base image
#     (Debian's iptables), by hack/kind/node-image.sh.
#
# Cold, on 2 cores: about 4 minutes for kubeadm, 2 for etcd and 4 for CoreDNS
# on top of the control plane's 7-10; everything is cached afterwards.
#
# Exit status: 0; 1 on failure; 3 when Go or the module proxy is missing.
set -euo pipefail

K8S_VERSION=v1.37.2 # must equal hack/control-plane.sh's
ETCD_VERSION=v3.7.0 # hack/kind/etcd/go.mod; kubeadm v1.37.2 asks for etcd 3.7.0-0
COREDNS_VERSION=v1.14.6
CRICTL_VERSION=v1.37.0
PAUSE_TAG=3.10.2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard"
k8s_bin="${FIBGUARD_K8S_CACHE:-${cache}/k8s/${K8S_VERSION}}"
out="${cache}/kind/k8s-${K8S_VERSION}"

log_prefix=kind-k8s
# shellcheck source=hack/lib/common.sh
. "${here}/../lib/common.sh"
# shellcheck source=hack/lib/k8s.sh
. "${here}/../lib/k8s.sh"

go="$(go_cmd)"
gobuild() { env GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 nice -n 10 "$go" "$@"; }

build_kubeadm() {
  [[ -x "${k8s_bin}/kubeadm" ]] && return 0
  local work start
  work="$(mktemp -d)"
  cp "${root}/hack/k8sbuild/go.mod" "${root}/hack/k8sbuild/go.sum" "$work/"
  printf '//go:build tools\n\npackage k8sbuild\n\nimport _ "k8s.io/kubernetes/cmd/kubeadm"\n' >"${work}/tools.go"
  log "building kubeadm ${K8S_VERSION} (about 4 minutes on 2 cores)"
  start=$(date +%s)
  (cd "$work" && env GOWORK=off GOFLAGS=-mod=mod "$go" list -deps k8s.io/kubernetes/cmd/kubeadm >/dev/null) ||
    missing_prerequisite "resolving kubeadm's modules failed (is the Go module proxy reachable?)"
  (cd "$work" && gobuild build -trimpath -ldflags "$(k8s_ldflags "$go" "${root}/hack/k8sbuild")" -o "${work}/kubeadm" k8s.io/kubernetes/cmd/kubeadm) ||
    missing_prerequisite "building kubeadm failed (is the Go module proxy reachable?)"
  mkdir -p "$k8s_bin"
  mv -f "${work}/kubeadm" "${k8s_bin}/kubeadm"
  rm -rf "$work"
  log "built kubeadm in $(($(date +%s) - start))s"
}

build_etcd() {
  [[ -x "${out}/bin/etcd" ]] && return 0
  log "building etcd ${ETCD_VERSION}"
  (cd "${here}/etcd" && gobuild build -trimpath -ldflags '-s -w' -o "${out}/bin/etcd.tmp" go.etcd.io/etcd/server/v3) ||
    missing_prerequisite "building etcd failed (is the Go module proxy reachable?)"
  mv -f "${out}/bin/etcd.tmp" "${out}/bin/etcd"
}

# go_install BINARY PACKAGE@VERSION: a module without replace lines.
go_install() {
  [[ -x "${out}/bin/$1" ]] && return 0
  log "building $2"
  rm -rf "${out}/bin/.gobin"
  env GOBIN="${out}/bin/.gobin" GOWORK=off GOFLAGS= CGO_ENABLED=0 nice -n 10 "$go" install -trimpath -ldflags '-s -w' "$2" ||
    missing_prerequisite "building $2 failed (is the Go module proxy reachable?)"
  mv -f "${out}/bin/.gobin/$1" "${out}/bin/$1"
  rm -rf "${out}/bin/.gobin"
}

# image NAME:TAG ENTRYPOINT BINARY: a one-layer image archive of a static binary.
image() {
  local ref=$1 entry=$2 bin=$3 file
  file="${out}/images/$(echo "${ref#registry.k8s.io/}" | tr '/:' '__').tar"
  [[ -s "$file" ]] && return 0
  "${out}/bin/.imagebuild" build -out "${file}.tmp" -ref "$ref" -add "${entry}=${bin}" -entrypoint "$entry" \
    -env PATH=/usr/local/bin:/usr/bin:/bin >/dev/null
  mv -f "${file}.tmp" "$file"
}

main() {
  local b
  mkdir -p "${out}/bin" "${out}/images"
  "${root}/hack/control-plane.sh" build kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy >/dev/null
  build_kubeadm
  for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    ln -sf "${k8s_bin}/${b}" "${out}/bin/${b}"
  done
  build_etcd
  go_install coredns "github.com/coredns/coredns@${COREDNS_VERSION}"
  if [[ -x "${cache}/local-node/crictl/${CRICTL_VERSION}/crictl" ]]; then
    cp -f "${cache}/local-node/crictl/${CRICTL_VERSION}/crictl" "${out}/bin/crictl"
  else
    go_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
  fi
  [[ -x "${out}/bin/pause" ]] || (cd "$root" && gobuild build -trimpath -ldflags '-s -w' -o "${out}/bin/pause" ./test/e2e/images/pause)
  [[ -x "${out}/bin/.imagebuild" ]] || (cd "${root}/hack/imagebuild" && gobuild build -o "${out}/bin/.imagebuild" .)

  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    image "registry.k8s.io/${b}:${K8S_VERSION}" "/usr/local/bin/${b}" "${k8s_bin}/${b}"
  done
  image "registry.k8s.io/etcd:${ETCD_VERSION#v}-0" /usr/local/bin/etcd "${out}/bin/etcd"
  image "registry.k8s.io/coredns/coredns:${COREDNS_VERSION}" /coredns "${out}/bin/coredns"
  image "registry.k8s.io/pause:${PAUSE_TAG}" /pause "${out}/bin/pause"
  echo "$K8S_VERSION" >"${out}/version"
  echo "$out"
}

main "$@"
