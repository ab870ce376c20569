#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without a container
# engine or registry, for the e2e suite (test/e2e): etcd + kube-apiserver
# (hack/control-plane.sh), kube-controller-manager, kube-scheduler,
# kube-proxy (nftables) and kubelet built from k8s.io/kubernetes, containerd
# + runc from Debian, the reference CNI plugins, and two images built here
# (pause, probe) imported into containerd. No DNS. Pods are scheduled, get
# their namespace's ServiceAccount and its token, and reach the API server
# through the `kubernetes` Service, as on any node. Derived from the recipe
# in ../shared/local-node (see its README for the pitfalls:
# restrict_oom_score_adj, failCgroupV1: false, ...).
#
# The whole node lives in a network namespace of its own (default
# "fibguard-node"), so every bridge, veth, route, nftables rule and address
# that kube-proxy and the CNI plugins create is inside it and the machine's
# own network is never touched. The namespace has lo and "node0" (one end of
# a veth pair whose other end stays inside too) with the node address
# 10.89.0.10/24 and a default route through it. containerd, kubelet and the
# node's other daemons also share a mount namespace of their own, in which
# the node's CNI directories are bind-mounted on the standard paths
# (/etc/cni/net.d, /opt/cni/bin, /var/lib/cni): a DaemonSet's hostPath
# volumes for those paths reach the node's directories, and the mounts of
# pods (rootfs, volumes, pod network namespaces) stay out of the machine's
# mount table. Where the machine lacks those paths, `up` creates them and
# binds the node's directories there in the machine's mount namespace too
# (a shell on the machine sees what the node sees); `down` undoes both.
# To run a command on the node (both namespaces), e.g. kubectl as admin:
#   hack/local-cluster.sh exec kubectl get pods -A
#
# Usage:
#   hack/local-cluster.sh build       build or reuse binaries and images (kubelet, kube-apiserver, kubectl,
#                                     CNI plugins, crictl, pause and probe images)
#   hack/local-cluster.sh up          build if needed, start everything, wait for the node to be Ready;
#                                     prints the env file (KEY=VALUE lines for the e2e suite)
#   hack/local-cluster.sh down        delete the pods (CNI DEL), stop what `up` started, remove the namespace,
#                                     mounts, cgroups and CNI state it created; keeps logs/ and the caches
#   hack/local-cluster.sh status      what runs (exit 0 when the node is up)
#   hack/local-cluster.sh leftovers   lists what a `down` should have removed and did not (exit 1 if any)
#   hack/local-cluster.sh images      build the pause and probe image archives; prints their directory
#   hack/local-cluster.sh kubeconfig  prints the admin kubeconfig's path
#   hack/local-cluster.sh env         prints the env file's path
#   hack/local-cluster.sh load-image ARCHIVE
#                                     import an image archive (hack/build-image.sh writes one) into the
#                                     node's containerd, under the names it carries
#   hack/local-cluster.sh restart [kubelet|containerd]...
#                                     stop and start those daemons (default both), as a node's service
#                                     manager would; waits for the node to be Ready again
#   hack/local-cluster.sh exec CMD... run CMD on the node (its network and mount namespaces), with
#                                     KUBECONFIG set to the admin kubeconfig and the cluster's kubectl
#                                     first on PATH
#
# Layout:
#   state  ${FIBGUARD_NODE_DIR:-/var/tmp/fibguard-node}: cp/ (control plane), containerd/, kubelet/,
#          cni/net.d (conf dir, /etc/cni/net.d on the node), cni/bin (bin dir, /opt/cni/bin),
#          cni/cache (libcni's cache, /var/lib/cni), cni/ipam (host-local data), pki/, logs/, *.pid, env
#   run    /run/fibguard-node: containerd's sockets and state (must be on tmpfs)
#   mntns  /run/fibguard-node-ns/mnt: the node's mount namespace (its directory is a private mount)
#   cache  ${XDG_CACHE_HOME:-$HOME/.cache}/fibguard/{k8s,cni-plugins,local-node}: binaries and images
#
# The CNI conf dir starts with one network, "fibguard-e2e" (bridge fge2e0 +
# host-local on 10.244.0.0/24) in 10-fibguard-e2e.conflist, so that the
# runtime reports its network ready. Tests play the primary CNI by rewriting
# that file.
#
# Exit status: 0 ok, 1 failure, 3 a prerequisite is missing (containerd, runc,
# etcd, nsenter, unshare, nft, curl, openssl, Go or the module proxy).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"
self="${here}/$(basename "${BASH_SOURCE[0]}")"

NODE_NAME="${FIBGUARD_NODE_NAME:-fibguard-node}"
NETNS="${FIBGUARD_NODE_NETNS:-fibguard-node}"
NODE_IP=10.89.0.10
NODE_GW=10.89.0.1
SERVICE_CIDR=10.96.0.0/16 # hack/control-plane.sh's
SERVICE_IP=10.96.0.1      # the `kubernetes` Service
CRICTL_VERSION=v1.37.0
IMAGE_PAUSE=localhost/fibguard-e2e/pause:1.0
IMAGE_PROBE=localhost/fibguard-e2e/probe:1.0

dir="${FIBGUARD_NODE_DIR:-/var/tmp/fibguard-node}"
run="/run/fibguard-node"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard"
node_cache="${cache}/local-node"
logs="${dir}/logs"
cp_dir="${dir}/cp"
netns_path="/run/netns/${NETNS}"
ns_dir="/run/fibguard-node-ns"
mntns="${ns_dir}/mnt"
sock="${run}/containerd/containerd.sock"
conf_dir="${dir}/cni/net.d"
cni_bin="${dir}/cni/bin"
cni_cache="${dir}/cni/cache"
# The node's directories and where the node sees them (its mount namespace).
standard_mounts=("${conf_dir}:/etc/cni/net.d" "${cni_bin}:/opt/cni/bin" "${cni_cache}:/var/lib/cni")
kubelet_dir="${dir}/kubelet"
cgroup_root="fibguard-node" # the kubelet's cgroups live under /<controller>/fibguard-node
env_file="${dir}/env"
primary="${conf_dir}/10-fibguard-e2e.conflist"

log_prefix=local-cluster
# shellcheck source=hack/lib/common.sh
. "${here}/lib/common.sh"
# shellcheck source=hack/lib/daemon.sh
. "${here}/lib/daemon.sh"
daemon_dir="$dir"
daemon_logs="$logs"
# Every daemon of the node joins its network and mount namespaces (set by
# main: node_enter).
daemon_prefix=()
daemon_groups=""

# in_mntns succeeds when this script already runs in the node's mount
# namespace (a command started by `exec`, such as the e2e suite). There the
# namespace's file is an empty file: it was bound after the namespace was
# made.
mntns_id="${dir}/mntns.id"
in_mntns() { [[ -s "$mntns_id" && "$(readlink /proc/self/ns/mnt)" == "$(cat "$mntns_id")" ]]; }

# have_mntns succeeds when the node's mount namespace exists.
have_mntns() { in_mntns || { [[ -e "$mntns" ]] && nsenter --mount="$mntns" -- true 2>/dev/null; }; }

# node_enter sets the array node_enter to the command prefix that runs a
# command on the node: in its network and mount namespaces.
node_enter() {
  node_enter=(nsenter --net="$netns_path" --mount="$mntns" --)
  if in_mntns; then node_enter=(nsenter --net="$netns_path" --); fi
}

# in_node CMD...: run CMD on the node.
in_node() {
  node_enter
  "${node_enter[@]}" "$@"
}

# ---- build -----------------------------------------------------------------

# The node's Kubernetes commands, built in one go (they share most packages).
K8S_COMMANDS=(kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy)
k8s_bin() { "${here}/control-plane.sh" build "${K8S_COMMANDS[@]}" | tail -n1; }

build_crictl() {
  local go out="${node_cache}/crictl/${CRICTL_VERSION}"
  [[ -x "${out}/crictl" ]] && return 0
  go="$(go_cmd)"
  mkdir -p "$out"
  log "building crictl ${CRICTL_VERSION}"
  # The module is sigs.k8s.io/cri-tools (the github.com path is refused by the proxy).
  env GOBIN="${out}/.tmp" GOWORK=off GOFLAGS= CGO_ENABLED=0 "$go" install "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}" ||
    missing_prerequisite "building crictl ${CRICTL_VERSION} failed (is the Go module proxy reachable?)"
  mv -f "${out}/.tmp/crictl" "${out}/crictl"
  rmdir "${out}/.tmp"
}

# build_images packs the pause and probe commands (test/e2e/images) into
# image archives with hack/imagebuild. Rebuilt every time: a few seconds, and
# the archives always match the sources.
build_images() {
  local go work
  go="$(go_cmd)"
  work="$(mktemp -d)"
  mkdir -p "${node_cache}/images"
  (cd "$root" && env CGO_ENABLED=0 GOWORK=off "$go" build -trimpath -buildvcs=false -ldflags '-s -w' \
    -o "${work}/" ./test/e2e/images/pause ./test/e2e/images/probe)
  (cd "${root}/hack/imagebuild" && env GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 "$go" build -o "${work}/imagebuild" .)
  "${work}/imagebuild" build -out "${node_cache}/images/pause.tar" -ref "$IMAGE_PAUSE" \
    -add /pause="${work}/pause" -entrypoint /pause -os linux -arch "$("$go" env GOARCH)" -created 0 >&2
  "${work}/imagebuild" build -out "${node_cache}/images/probe.tar" -ref "$IMAGE_PROBE" \
    -add /probe="${work}/probe" -entrypoint /probe -os linux -arch "$("$go" env GOARCH)" -created 0 >&2
  rm -rf "$work"
}

cmd_build() {
  local rc=0
  k8s_bin >/dev/null || rc=$?
  ((rc == 0)) || exit "$rc"
  "${here}/cni-plugins.sh" >/dev/null
  build_crictl
  build_images
  log "built: $(k8s_bin), $("${here}/cni-plugins.sh" | tail -n1), crictl, images in ${node_cache}/images"
}

# ---- processes -------------------------------------------------------------

# owns NAME PID: PID still runs this cluster's daemon NAME.
owns() {
  local line
  [[ "$2" =~ ^[0-9]+$ ]] || return 1
  line="$(cmdline "$2")" || return 1
  case "$1" in
  containerd) [[ "${line%% *}" == */containerd && "$line" == *" --config ${dir}/containerd.toml "* ]] ;;
  kubelet) [[ "${line%% *}" == */kubelet && "$line" == *" --root-dir=${kubelet_dir} "* ]] ;;
  kube-controller-manager | kube-scheduler) [[ "${line%% *}" == */"$1" && "$line" == *" --cert-dir=${dir}/pki/$1 "* ]] ;;
  kube-proxy) [[ "${line%% *}" == */kube-proxy && "$line" == *" --config=${dir}/kube-proxy.yaml "* ]] ;;
  *) return 1 ;;
  esac
}

lock() {
  mkdir -p "$dir"
  exec 9>"${dir}/.lock"
  flock 9
}

# ---- up --------------------------------------------------------------------

need_tools() {
  local t
  for t in containerd runc ctr nsenter unshare mountpoint curl openssl flock ip nft; do
    command -v "$t" >/dev/null || missing_prerequisite "${t} not found (apt-get install containerd runc util-linux curl openssl iproute2 nftables)"
  done
  [[ -x /usr/bin/etcd ]] || missing_prerequisite "/usr/bin/etcd not found (apt-get install etcd-server)"
}

make_netns() {
  if [[ ! -e "$netns_path" ]]; then
    ip netns add "$NETNS"
  fi
  ip -n "$NETNS" link set lo up
  if ! ip -n "$NETNS" link show node0 >/dev/null 2>&1; then
    # A veth pair with both ends inside: the dummy module may be missing.
    ip -n "$NETNS" link add node0 type veth peer name node0-peer
    ip -n "$NETNS" link set node0-peer up
    ip -n "$NETNS" addr add "${NODE_IP}/24" dev node0
    ip -n "$NETNS" link set node0 up
    ip -n "$NETNS" route add default via "$NODE_GW" dev node0 onlink
  fi
}

# make_mntns creates the node's mount namespace, if missing, with the node's
# CNI directories bind-mounted on the standard paths. Its propagation is
# "slave": the machine's later mounts (another `ip netns add`) show inside,
# nothing mounted inside shows outside. The namespace lives as long as its
# file stays mounted (remove_mntns), whatever runs in it.
make_mntns() {
  local m src dst
  have_mntns && return 0
  mkdir -p "$ns_dir" "$conf_dir" "$cni_bin" "$cni_cache"
  # A namespace file can only be bound on a private mount.
  mountpoint -q "$ns_dir" || mount --bind "$ns_dir" "$ns_dir"
  mount --make-private "$ns_dir"
  : >"$mntns"
  unshare --mount="$mntns" --propagation slave true
  nsenter --mount="$mntns" -- readlink /proc/self/ns/mnt >"$mntns_id"
  for m in "${standard_mounts[@]}"; do
    src="${m%%:*}" dst="${m#*:}"
    make_mountpoint "$dst"
    nsenter --mount="$mntns" -- mount --bind "$src" "$dst"
  done
  bind_on_machine
}

# bind_on_machine binds the node's directories on the standard paths in the
# machine's own mount namespace too, where this script created those paths
# (so they hide nothing of the machine's): a shell on the machine then sees
# the node's /etc/cni/net.d as the node does, instead of an empty directory
# that the node never reads. Recorded in host-binds for remove_mntns.
bind_on_machine() {
  local m src dst
  [[ -f "${dir}/created-mountpoints" ]] || return 0
  for m in "${standard_mounts[@]}"; do
    src="${m%%:*}" dst="${m#*:}"
    grep -qxF "$dst" "${dir}/created-mountpoints" || continue
    mountpoint -q "$dst" && continue
    mount --bind "$src" "$dst"
    echo "$dst" >>"${dir}/host-binds"
  done
}

# make_mountpoint DIR creates DIR on the machine when missing, empty, as a
# mount point only, and records the directories it created (deepest last)
# so that remove_mntns can take exactly those away again.
make_mountpoint() {
  local d=$1 missing=()
  while [[ ! -e "$d" ]]; do
    missing=("$d" "${missing[@]}")
    d="$(dirname "$d")"
  done
  for d in "${missing[@]}"; do
    mkdir "$d"
    echo "$d" >>"${dir}/created-mountpoints"
  done
}

# remove_mntns releases the node's mount namespace (and with it every mount
# made inside: pod root file systems, volumes, pod network namespaces) once
# no process is left in it, and removes the mount points it created.
remove_mntns() {
  local d
  if mountpoint -q "$mntns" 2>/dev/null; then umount "$mntns" || umount -l "$mntns"; fi
  rm -f "$mntns" "$mntns_id"
  if mountpoint -q "$ns_dir" 2>/dev/null; then umount "$ns_dir" || umount -l "$ns_dir"; fi
  rmdir "$ns_dir" 2>/dev/null || true
  if [[ -f "${dir}/host-binds" ]]; then
    while read -r d; do
      if mountpoint -q "$d"; then umount "$d" || umount -l "$d"; fi
    done <"${dir}/host-binds"
    rm -f "${dir}/host-binds"
  fi
  if [[ -f "${dir}/created-mountpoints" ]]; then
    tac "${dir}/created-mountpoints" | while read -r d; do rmdir "$d" 2>/dev/null || log "mount point ${d} is not empty; left in place"; done
    rm -f "${dir}/created-mountpoints"
  fi
}

# write_primary writes the healthy network when the conf dir has no network:
# containerd reports NetworkReady, and so the node Ready, only with one.
write_primary() {
  mkdir -p "$conf_dir" "${dir}/cni/ipam"
  compgen -G "${conf_dir}/*.conf*" >/dev/null && return 0
  write_file "$primary" 0644 <<EOF
{
  "cniVersion": "1.0.0",
  "name": "fibguard-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "fge2e0",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "${dir}/cni/ipam",
        "ranges": [[{"subnet": "10.244.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

install_cni_bin() {
  local plugins p
  plugins="$("${here}/cni-plugins.sh" | tail -n1)"
  mkdir -p "$cni_bin"
  for p in bridge host-local ptp loopback portmap; do
    [[ -x "${cni_bin}/${p}" ]] || cp -f "${plugins}/${p}" "${cni_bin}/${p}"
  done
}

write_containerd_config() {
  mkdir -p "${dir}/containerd" "${run}/containerd"
  write_file "${dir}/containerd.toml" 0644 <<EOF
# containerd 1.6 (Debian bookworm) for the fibguard e2e node; written by hack/local-cluster.sh.
version = 2
root = "${dir}/containerd/root"
state = "${run}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGE_PAUSE}"
  # The machine's bounding set lacks CAP_SYS_RESOURCE: runc cannot lower
  # oom_score_adj to kubelet's -998 for sandboxes ("can't get final child's
  # PID from pipe: EOF"); clamp to containerd's own value instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  # The standard paths, which the node's mount namespace binds to ${cni_bin} and ${conf_dir}.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
EOF
}

start_containerd() {
  local i
  if ! running containerd >/dev/null; then
    write_containerd_config
    start_daemon containerd "$(command -v containerd)" --config "${dir}/containerd.toml" --log-level info
  fi
  for i in $(seq 120); do
    ctr --address "$sock" version >/dev/null 2>&1 && break
    running containerd >/dev/null || fail_start containerd "containerd exited"
    ((i == 120)) && fail_start containerd "containerd not answering after 60s"
    sleep 0.5
  done
  ctr --address "$sock" -n k8s.io images import "${node_cache}/images/pause.tar" >/dev/null
  ctr --address "$sock" -n k8s.io images import "${node_cache}/images/probe.tar" >/dev/null
  log "containerd ready (pid $(running containerd)); images ${IMAGE_PAUSE} ${IMAGE_PROBE} imported"
}

# kubelet_credentials: a client certificate for system:node:NAME in group
# system:nodes, signed by the control plane's CA, so that the Node authorizer
# and NodeRestriction treat the kubelet as they would on a real node.
kubelet_credentials() {
  local pki="${dir}/pki" ca="${cp_dir}/pki"
  mkdir -p "$pki"
  chmod 0700 "$pki"
  if [[ ! -s "${pki}/kubelet.crt" ]] || ! openssl verify -CAfile "${ca}/ca.crt" "${pki}/kubelet.crt" >/dev/null 2>&1; then
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "${pki}/kubelet.key" -out "${pki}/kubelet.csr" \
      -subj "/O=system:nodes/CN=system:node:${NODE_NAME}" 2>/dev/null
    openssl x509 -req -in "${pki}/kubelet.csr" -CA "${ca}/ca.crt" -CAkey "${ca}/ca.key" -CAcreateserial \
      -sha256 -days 3650 -out "${pki}/kubelet.crt" -extfile <(
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=clientAuth"
      ) 2>/dev/null
    rm -f "${pki}/kubelet.csr"
    chmod 0600 "${pki}/kubelet.key"
  fi
  local server
  server="$(sed -n 's/^ *server: //p' "${cp_dir}/admin.kubeconfig")"
  write_file "${dir}/kubelet.kubeconfig" 0600 <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${server}
    certificate-authority: ${ca}/ca.crt
users:
- name: kubelet
  user:
    client-certificate: ${pki}/kubelet.crt
    client-key: ${pki}/kubelet.key
contexts:
- name: local
  context: {cluster: local, user: kubelet}
current-context: local
EOF
}

make_cgroup_root() {
  local c
  for c in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
    [[ -d "$c" && -w "$c" ]] || continue
    [[ -f "${c}cgroup.procs" ]] || continue
    mkdir -p "${c}${cgroup_root}"
  done
}

start_kubelet() {
  local bin i
  bin="$(k8s_bin)"
  if ! running kubelet >/dev/null; then
    mkdir -p "$kubelet_dir"
    make_cgroup_root
    write_file "${dir}/kubelet-config.yaml" 0644 <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://${sock}
cgroupDriver: cgroupfs       # containerd 1.6 has no RuntimeConfig RPC; kubelet falls back to this
cgroupRoot: /${cgroup_root}  # every cgroup of the node under one root that down removes
failCgroupV1: false          # this machine is cgroup v1 (hybrid); kubelet 1.35+ refuses v1 by default
failSwapOn: false
authentication:
  anonymous: {enabled: true} # test node only: the API server reaches logs/exec without a client certificate
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
# a busy shared build machine must not make the node evict or collect images
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
    start_daemon kubelet "${bin}/kubelet" --config="${dir}/kubelet-config.yaml" \
      --kubeconfig="${dir}/kubelet.kubeconfig" --hostname-override="$NODE_NAME" \
      --node-ip="$NODE_IP" --root-dir="${kubelet_dir}" --cert-dir="${dir}/pki/kubelet-serving" --v=2
  fi
  wait_ready
}

# wait_ready waits until kubelet answers its health check and the node is
# Ready.
wait_ready() {
  local i
  for i in $(seq 240); do
    if in_node curl -sf --max-time 2 http://127.0.0.1:10248/healthz >/dev/null 2>&1 &&
      [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; then
      log "node ${NODE_NAME} Ready (kubelet pid $(running kubelet))"
      return 0
    fi
    running kubelet >/dev/null || fail_start kubelet "kubelet exited"
    sleep 0.5
  done
  fail_start kubelet "node ${NODE_NAME} not Ready after 120s"
}

# start_controllers starts kube-controller-manager and kube-scheduler with
# the control plane's keys: service-account tokens and the kube-root-ca.crt
# ConfigMap, each namespace's default ServiceAccount, DaemonSets, garbage
# collection and namespace deletion, scheduling. One instance of each, no
# leader election; their own serving certificates go to pki/NAME.
start_controllers() {
  local bin pki="${cp_dir}/pki" kc="${cp_dir}/admin.kubeconfig"
  bin="$(k8s_bin)"
  mkdir -p "${dir}/pki/kube-controller-manager" "${dir}/pki/kube-scheduler"
  running kube-controller-manager >/dev/null ||
    start_daemon kube-controller-manager "${bin}/kube-controller-manager" \
      --cert-dir="${dir}/pki/kube-controller-manager" --kubeconfig="$kc" \
      --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
      --bind-address=127.0.0.1 --leader-elect=false --cluster-name="$NODE_NAME" \
      --service-account-private-key-file="${pki}/sa.key" --root-ca-file="${pki}/ca.crt" \
      --use-service-account-credentials=true \
      --cluster-signing-cert-file="${pki}/ca.crt" --cluster-signing-key-file="${pki}/ca.key" \
      --service-cluster-ip-range="$SERVICE_CIDR" --v=1
  running kube-scheduler >/dev/null ||
    start_daemon kube-scheduler "${bin}/kube-scheduler" \
      --cert-dir="${dir}/pki/kube-scheduler" --kubeconfig="$kc" \
      --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
      --bind-address=127.0.0.1 --leader-elect=false --v=1
}

# start_kube_proxy runs kube-proxy in nftables mode in the node's network
# namespace: the `kubernetes` Service (10.96.0.1:443) reaches the API
# server there, for hostNetwork pods and the CNI plugins alike. The
# conntrack settings are left alone (0): nf_conntrack_max and the hash size
# are the machine's, not the namespace's.
start_kube_proxy() {
  local bin
  bin="$(k8s_bin)"
  running kube-proxy >/dev/null && return 0
  write_file "${dir}/kube-proxy.yaml" 0644 <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${cp_dir}/admin.kubeconfig
hostnameOverride: ${NODE_NAME}
mode: nftables
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start_daemon kube-proxy "${bin}/kube-proxy" --config="${dir}/kube-proxy.yaml" --v=1
}

# wait_service waits until the `kubernetes` Service answers from the node
# as the API server does (kube-proxy has programmed it).
wait_service() {
  local i
  for i in $(seq 240); do
    if in_node curl -s -o /dev/null --max-time 2 --cacert "${cp_dir}/pki/ca.crt" "https://${SERVICE_IP}:443/readyz"; then
      log "the kubernetes Service answers on ${SERVICE_IP}:443 (kube-proxy pid $(running kube-proxy))"
      return 0
    fi
    running kube-proxy >/dev/null || fail_start kube-proxy "kube-proxy exited"
    sleep 0.5
  done
  fail_start kube-proxy "the kubernetes Service does not answer after 120s"
}

# wait_controllers waits until the controllers have done their first work:
# kube-system's default ServiceAccount and the cluster's CA in a ConfigMap.
wait_controllers() {
  local i
  for i in $(seq 240); do
    if kubectl get serviceaccount default -n kube-system >/dev/null 2>&1 &&
      kubectl get configmap kube-root-ca.crt -n kube-system >/dev/null 2>&1; then
      log "controllers ready (kube-controller-manager pid $(running kube-controller-manager), kube-scheduler pid $(running kube-scheduler))"
      return 0
    fi
    running kube-controller-manager >/dev/null || fail_start kube-controller-manager "kube-controller-manager exited"
    running kube-scheduler >/dev/null || fail_start kube-scheduler "kube-scheduler exited"
    sleep 0.5
  done
  fail_start kube-controller-manager "no ServiceAccount default or ConfigMap kube-root-ca.crt in kube-system after 120s"
}

# kubectl ARGS...: the cluster's own kubectl, as admin, from inside the node.
kubectl() {
  in_node "$(k8s_bin)/kubectl" --kubeconfig "${cp_dir}/admin.kubeconfig" "$@"
}

# write_env writes the suite's settings. The CNI directories are the
# node's own paths, the same on the machine and on the node (where they are
# also /etc/cni/net.d and /opt/cni/bin).
write_env() {
  local bin plugins
  bin="$(k8s_bin)"
  plugins="$("${here}/cni-plugins.sh" | tail -n1)"
  write_file "$env_file" 0644 <<EOF
FIBGUARD_E2E_KUBECONFIG=${cp_dir}/admin.kubeconfig
FIBGUARD_E2E_NODE=${NODE_NAME}
FIBGUARD_E2E_NETNS=${netns_path}
FIBGUARD_E2E_RESTART='${self} restart'
FIBGUARD_E2E_CNI_CONF_DIR=${conf_dir}
FIBGUARD_E2E_CNI_BIN_DIR=${cni_bin}
FIBGUARD_E2E_PRIMARY_CONFLIST=$(basename "$primary")
FIBGUARD_E2E_IPAM_DIR=${dir}/cni/ipam
FIBGUARD_E2E_PROBE_IMAGE=${IMAGE_PROBE}
FIBGUARD_E2E_CRICTL='${node_cache}/crictl/${CRICTL_VERSION}/crictl --runtime-endpoint unix://${sock}'
FIBGUARD_E2E_KUBECTL=${bin}/kubectl
FIBGUARD_E2E_CNI_PLUGINS=${plugins}
EOF
}

cmd_up() {
  need_tools
  cmd_build
  lock
  mkdir -p "$logs" "$run"
  make_netns
  make_mntns
  # The control plane inside the node's namespaces, listening on the node's
  # address too: that is the endpoint of the `kubernetes` Service.
  FIBGUARD_CP_DIR="$cp_dir" FIBGUARD_CP_BIND_ADDRESS=0.0.0.0 FIBGUARD_CP_ADVERTISE_ADDRESS="$NODE_IP" \
    in_node "${here}/control-plane.sh" up >/dev/null
  start_controllers
  start_kube_proxy
  install_cni_bin
  write_primary
  start_containerd
  kubelet_credentials
  start_kubelet
  wait_controllers
  wait_service
  write_env
  log "up: $(kubectl get node "$NODE_NAME" --no-headers 2>/dev/null)"
  echo "$env_file"
}

# ---- down, status ------------------------------------------------------------

# delete_pods removes every pod through the API (the kubelet runs CNI DEL and
# stops the containers), then any sandbox left, through the CRI.
delete_pods() {
  local crictl=("${node_cache}/crictl/${CRICTL_VERSION}/crictl" --runtime-endpoint "unix://${sock}" --timeout 20s)
  if running kubelet >/dev/null && [[ -s "${cp_dir}/admin.kubeconfig" ]]; then
    kubectl delete pods --all --all-namespaces --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 ||
      log "deleting pods through the API did not finish; removing sandboxes through the CRI"
  fi
  if running containerd >/dev/null && [[ -x "${crictl[0]}" ]]; then
    in_node "${crictl[@]}" rmp --all --force >/dev/null 2>&1 || log "crictl rmp failed; see ${logs}/containerd.log"
  fi
}

# kill_shims stops the containerd shims of this node's containers: they
# outlive containerd by design.
kill_shims() {
  local pid line
  for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
    line="$(cmdline "$pid")" || continue
    if [[ "$line" == *"-address ${sock} "* ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

unmount_all() {
  local m
  # Deepest first; lazily when busy.
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount ${m}"
  done < <(awk -v a="$dir" -v b="$run" 'index($2, a"/") == 1 || index($2, b"/") == 1 || $2 == b {print $2}' /proc/mounts | sort -r)
}

remove_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/"${cgroup_root}" /sys/fs/cgroup/unified/"${cgroup_root}"; do
    [[ -d "$c" ]] || continue
    # Leaves first: a cgroup directory can only be removed once empty of children.
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d "$c" ]] && log "cgroup ${c} still has processes"
  done
}

# pod_netns prints the network namespaces of this node's pod sandboxes, as
# containerd recorded them (/var/run/netns/cni-<uuid>).
pod_netns() {
  local crictl=("${node_cache}/crictl/${CRICTL_VERSION}/crictl" --runtime-endpoint "unix://${sock}" --timeout 10s) id
  running containerd >/dev/null && [[ -x "${crictl[0]}" ]] || return 0
  for id in $(in_node "${crictl[@]}" pods -q 2>/dev/null || true); do
    in_node "${crictl[@]}" inspectp -o json "$id" 2>/dev/null | grep -o '"/var/run/netns/cni-[0-9a-f-]*"' | tr -d '"' || true
  done | sort -u
}

# remove_pod_netns PATH...: delete the pod namespaces that containerd left:
# inside the node's mount namespace, where they are mounted, then the empty
# files the mount points leave on the machine.
remove_pod_netns() {
  local p
  for p in "$@"; do
    if have_mntns; then in_node ip netns delete "$(basename "$p")" 2>/dev/null || true; fi
    if [[ -e "$p" ]]; then ip netns delete "$(basename "$p")" 2>/dev/null || rm -f "$p"; fi
  done
}

# node_daemons are the daemons of the node, in the order `down` stops them:
# the controllers first (nothing recreates the pods being deleted), then
# what runs the pods.
node_daemons=(kube-controller-manager kube-scheduler kubelet kube-proxy containerd)

cmd_down() {
  [[ -d "$dir" ]] || {
    log "nothing to stop: no ${dir}"
    return 0
  }
  local pods_ns=() name
  lock
  if [[ -e "$netns_path" ]] && have_mntns; then
    mapfile -t pods_ns < <(pod_netns)
    stop_daemon kube-controller-manager
    stop_daemon kube-scheduler
    delete_pods
  fi
  for name in "${node_daemons[@]}"; do stop_daemon "$name"; done
  kill_shims
  if [[ -e "$netns_path" ]] && have_mntns; then
    FIBGUARD_CP_DIR="$cp_dir" in_node "${here}/control-plane.sh" down >/dev/null 2>&1 ||
      log "control plane down failed; see ${cp_dir}/logs"
  else
    FIBGUARD_CP_DIR="$cp_dir" "${here}/control-plane.sh" down >/dev/null 2>&1 ||
      log "control plane down failed; see ${cp_dir}/logs"
  fi
  remove_pod_netns "${pods_ns[@]}"
  # Every process of the node is gone: releasing its mount namespace
  # releases every mount made in it.
  remove_mntns
  unmount_all
  remove_cgroups
  # The namespace holds every bridge, veth, route and nftables rule of the
  # node: deleting it removes them all.
  [[ -e "$netns_path" ]] && ip netns delete "$NETNS"
  rm -rf "${run}" "${dir}/containerd" "$kubelet_dir" "${dir}/cni" "${dir}/pki" "$env_file" \
    "${dir}"/*.pid "${dir}/containerd.toml" "${dir}/kubelet-config.yaml" "${dir}/kubelet.kubeconfig" \
    "${dir}/kube-proxy.yaml"
  log "down; logs kept in ${logs}"
}

cmd_status() {
  local rc=0 name pid
  if [[ -e "$netns_path" ]]; then echo "netns: ${netns_path}"; else
    echo "netns: none"
    rc=1
  fi
  if have_mntns; then echo "mount namespace: ${mntns}"; else
    echo "mount namespace: none"
    rc=1
  fi
  for name in "${node_daemons[@]}"; do
    if pid="$(running "$name")"; then echo "${name}: running, pid ${pid}"; else
      echo "${name}: not running"
      rc=1
    fi
  done
  if ((rc == 0)); then
    FIBGUARD_CP_DIR="$cp_dir" in_node "${here}/control-plane.sh" status | sed 's/^/control plane: /' || rc=1
    if ((rc == 0)); then kubectl get node "$NODE_NAME" --no-headers || rc=1; fi
  fi
  return "$rc"
}

# cmd_leftovers lists anything of the node that outlived `down`: processes,
# the namespaces, mounts, mount points, cgroups.
cmd_leftovers() {
  local found=0 pid line c
  for pid in $(pgrep -f 'containerd|kube|etcd' || true); do
    line="$(cmdline "$pid")" || continue
    if [[ "$line" == *"${dir}/"* || "$line" == *"${run}/"* ]]; then
      echo "process ${pid}: ${line}"
      found=1
    fi
  done
  if [[ -e "$netns_path" ]]; then
    echo "network namespace ${netns_path}"
    found=1
  fi
  if [[ -e "$ns_dir" ]]; then
    echo "mount namespace directory ${ns_dir}"
    found=1
  fi
  if [[ -s "${dir}/created-mountpoints" ]]; then
    echo "mount points $(tr '\n' ' ' <"${dir}/created-mountpoints")"
    found=1
  fi
  if [[ -s "${dir}/host-binds" ]]; then
    echo "bind mounts on the machine $(tr '\n' ' ' <"${dir}/host-binds")"
    found=1
  fi
  while read -r line; do
    echo "mount ${line}"
    found=1
  done < <(awk -v a="$dir" -v b="$run" 'index($2, a"/") == 1 || index($2, b"/") == 1 || $2 == b {print $2}' /proc/mounts)
  for c in /sys/fs/cgroup/*/"${cgroup_root}"; do
    if [[ -d "$c" ]]; then
      echo "cgroup ${c}"
      found=1
    fi
  done
  if [[ -d "$run" ]]; then
    echo "directory ${run}"
    found=1
  fi
  return "$found"
}

# cmd_load_image ARCHIVE imports an image archive into the node's
# containerd, in the namespace kubelet uses, under the names it carries.
cmd_load_image() {
  local archive=${1:-}
  [[ -n "$archive" && $# -eq 1 ]] || die "usage: $0 load-image ARCHIVE"
  [[ -f "$archive" ]] || die "load-image: ${archive}: not a regular file"
  running containerd >/dev/null || die "load-image: the node is not up (hack/local-cluster.sh up)"
  ctr --address "$sock" -n k8s.io images import "$archive" >&2 ||
    die "load-image: importing ${archive} failed"
  log "loaded ${archive}"
}

# cmd_restart [NAME...] stops and starts kubelet and/or containerd, as a
# node's service manager restarts them (the pods keep running), and waits
# for the node to be Ready again.
cmd_restart() {
  local names=("$@") name
  ((${#names[@]})) || names=(containerd kubelet)
  for name in "${names[@]}"; do
    [[ "$name" == kubelet || "$name" == containerd ]] || die "restart: ${name}: want kubelet or containerd"
  done
  lock
  for name in "${names[@]}"; do stop_daemon "$name"; done
  [[ " ${names[*]} " == *" containerd "* ]] && start_containerd
  # start_kubelet waits for the node itself.
  if [[ " ${names[*]} " == *" kubelet "* ]]; then start_kubelet; else wait_ready; fi
}

# cmd_exec CMD... runs CMD on the node as an admin would.
cmd_exec() {
  (($#)) || die "usage: $0 exec CMD..."
  have_mntns || die "exec: the node is not up (hack/local-cluster.sh up)"
  local bin
  bin="$(k8s_bin 2>/dev/null)"
  node_enter
  # --wd: entering a mount namespace would otherwise start CMD in /.
  KUBECONFIG="${cp_dir}/admin.kubeconfig" PATH="${bin}:${PATH}" \
    "${node_enter[@]:0:${#node_enter[@]}-1}" --wd="$PWD" -- "$@"
}

main() {
  node_enter
  daemon_prefix=("${node_enter[@]}")
  case "${1:-}" in
  build) cmd_build ;;
  images)
    build_images
    echo "${node_cache}/images"
    ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  leftovers) cmd_leftovers ;;
  kubeconfig) echo "${cp_dir}/admin.kubeconfig" ;;
  env) echo "$env_file" ;;
  load-image)
    shift
    cmd_load_image "$@"
    ;;
  restart)
    shift
    cmd_restart "$@"
    ;;
  exec)
    shift
    cmd_exec "$@"
    ;;
  *)
    sed -n '/^# Usage:/,/^$/p' "$self" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
}

main "$@"
exit
