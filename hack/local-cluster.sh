#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without a container
# engine or registry, for the e2e suite (test/e2e): etcd + kube-apiserver
# (hack/control-plane.sh), containerd + runc from Debian, kubelet built from
# k8s.io/kubernetes, the reference CNI plugins, and two images built here
# (pause, probe) imported into containerd. No controller-manager, scheduler,
# kube-proxy or DNS: pods name their node and do not mount a service account
# token. Derived from the recipe in ../shared/local-node (see its README for
# the pitfalls: restrict_oom_score_adj, failCgroupV1: false, ...).
#
# The whole node lives in a network namespace of its own (default
# "fibguard-node"): the daemons join it with nsenter (network only), so every
# bridge, veth, route and address the CNI plugins create is inside it and the
# machine's own network is never touched. The namespace has lo and
# "node0" (one end of a veth pair whose other end stays inside too) with the node address 10.89.0.10/24 and a default route through it.
# To reach the API server or a pod, run inside it:
#   nsenter --net=/run/netns/fibguard-node kubectl --kubeconfig "$(hack/local-cluster.sh kubeconfig)" get pods
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
#
# Layout:
#   state  ${FIBGUARD_NODE_DIR:-/var/tmp/fibguard-node}: cp/ (control plane), containerd/, kubelet/,
#          cni/net.d (conf dir), cni/bin (bin dir), cni/ipam (host-local data), pki/, logs/, *.pid, env
#   run    /run/fibguard-node: containerd's sockets and state (must be on tmpfs)
#   cache  ${XDG_CACHE_HOME:-$HOME/.cache}/fibguard/{k8s,cni-plugins,local-node}: binaries and images
#
# The CNI conf dir starts with one network, "fibguard-e2e" (bridge fge2e0 +
# host-local on 10.244.0.0/24) in 10-fibguard-e2e.conflist, so that the
# runtime reports its network ready. Tests play the primary CNI by rewriting
# that file.
#
# Exit status: 0 ok, 1 failure, 3 a prerequisite is missing (containerd, runc,
# etcd, nsenter, curl, openssl, Go or the module proxy).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"
self="${here}/$(basename "${BASH_SOURCE[0]}")"

NODE_NAME="${FIBGUARD_NODE_NAME:-fibguard-node}"
NETNS="${FIBGUARD_NODE_NETNS:-fibguard-node}"
NODE_IP=10.89.0.10
NODE_GW=10.89.0.1
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
sock="${run}/containerd/containerd.sock"
conf_dir="${dir}/cni/net.d"
cni_bin="${dir}/cni/bin"
kubelet_dir="${dir}/kubelet"
cgroup_root="fibguard-node" # the kubelet's cgroups live under /<controller>/fibguard-node
env_file="${dir}/env"
primary="${conf_dir}/10-fibguard-e2e.conflist"

# shellcheck source=hack/lib/daemon.sh
. "${here}/lib/daemon.sh"
daemon_dir="$dir"
daemon_logs="$logs"
# Every daemon of the node joins its network namespace (network only: the
# mount namespace stays the machine's, so containerd and kubelet see the same
# files and mounts).
daemon_prefix=(nsenter --net="$netns_path" --)
daemon_groups=""

log() { echo "local-cluster: $*" >&2; }
die() {
  log "$*"
  exit 1
}
missing_prerequisite() {
  log "$*"
  exit 3
}

go_cmd() {
  local go="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
  command -v "$go" >/dev/null 2>&1 || missing_prerequisite "Go not found (set GO=/path/to/go)"
  echo "$go"
}

# in_node CMD...: run CMD in the node's network namespace (network only: the
# mount namespace stays the machine's, so containerd and kubelet see the same
# files and mounts).
in_node() { nsenter --net="$netns_path" -- "$@"; }

# ---- build -----------------------------------------------------------------

k8s_bin() { "${here}/control-plane.sh" build kube-apiserver kubectl kubelet | tail -n1; }

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
  for t in containerd runc ctr nsenter curl openssl flock ip; do
    command -v "$t" >/dev/null || missing_prerequisite "${t} not found (apt-get install containerd runc util-linux curl openssl iproute2)"
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
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${cni_bin}"
    conf_dir = "${conf_dir}"
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
  for i in $(seq 240); do
    if [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; then
      log "node ${NODE_NAME} Ready (kubelet pid $(running kubelet))"
      return 0
    fi
    running kubelet >/dev/null || fail_start kubelet "kubelet exited"
    sleep 0.5
  done
  fail_start kubelet "node ${NODE_NAME} not Ready after 120s"
}

# kubectl ARGS...: the cluster's own kubectl, as admin, from inside the node.
kubectl() {
  in_node "$(k8s_bin)/kubectl" --kubeconfig "${cp_dir}/admin.kubeconfig" "$@"
}

write_env() {
  local bin plugins
  bin="$(k8s_bin)"
  plugins="$("${here}/cni-plugins.sh" | tail -n1)"
  write_file "$env_file" 0644 <<EOF
FIBGUARD_E2E_KUBECONFIG=${cp_dir}/admin.kubeconfig
FIBGUARD_E2E_NODE=${NODE_NAME}
FIBGUARD_E2E_NETNS=${netns_path}
FIBGUARD_E2E_CNI_CONF_DIR=${conf_dir}
FIBGUARD_E2E_CNI_BIN_DIR=${cni_bin}
FIBGUARD_E2E_PRIMARY_CONFLIST=$(basename "$primary")
FIBGUARD_E2E_IPAM_DIR=${dir}/cni/ipam
FIBGUARD_E2E_PROBE_IMAGE=${IMAGE_PROBE}
FIBGUARD_E2E_CRICTL='${node_cache}/crictl/${CRICTL_VERSION}/crictl --runtime-endpoint unix://${sock}'
FIBGUARD_E2E_KUBECTL=${bin}/kubectl
FIBGUARD_E2E_CNI_PLUGINS=${plugins}
FIBGUARD_E2E_INSTALL=process
EOF
}

cmd_up() {
  need_tools
  cmd_build
  lock
  mkdir -p "$logs" "$run"
  make_netns
  # The control plane inside the node's namespace: the kubelet reaches it on 127.0.0.1.
  FIBGUARD_CP_DIR="$cp_dir" in_node "${here}/control-plane.sh" up >/dev/null
  install_cni_bin
  write_primary
  start_containerd
  kubelet_credentials
  start_kubelet
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

# remove_pod_netns PATH...: delete the pod namespaces that containerd left.
remove_pod_netns() {
  local p
  for p in "$@"; do
    if [[ -e "$p" ]]; then ip netns delete "$(basename "$p")" 2>/dev/null || true; fi
  done
}

cmd_down() {
  [[ -d "$dir" ]] || {
    log "nothing to stop: no ${dir}"
    return 0
  }
  local pods_ns=()
  lock
  if [[ -e "$netns_path" ]]; then
    mapfile -t pods_ns < <(pod_netns)
    delete_pods
    stop_daemon kubelet
    stop_daemon containerd
    kill_shims
    FIBGUARD_CP_DIR="$cp_dir" in_node "${here}/control-plane.sh" down >/dev/null 2>&1 ||
      log "control plane down failed; see ${cp_dir}/logs"
  else
    stop_daemon kubelet
    stop_daemon containerd
    kill_shims
  fi
  unmount_all
  remove_pod_netns "${pods_ns[@]}"
  remove_cgroups
  # The namespace holds every bridge, veth and route of the node: deleting it removes them all.
  [[ -e "$netns_path" ]] && ip netns delete "$NETNS"
  rm -rf "${run}" "${dir}/containerd" "$kubelet_dir" "${dir}/cni" "${dir}/pki" "$env_file" \
    "${dir}"/*.pid "${dir}/containerd.toml" "${dir}/kubelet-config.yaml" "${dir}/kubelet.kubeconfig"
  # libcni's cache directory, only when our DELs left it empty.
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  log "down; logs kept in ${logs}"
}

cmd_status() {
  local rc=0 name pid
  if [[ -e "$netns_path" ]]; then echo "netns: ${netns_path}"; else
    echo "netns: none"
    rc=1
  fi
  for name in containerd kubelet; do
    if pid="$(running "$name")"; then echo "${name}: running, pid ${pid}"; else
      echo "${name}: not running"
      rc=1
    fi
  done
  if [[ -e "$netns_path" ]]; then
    FIBGUARD_CP_DIR="$cp_dir" in_node "${here}/control-plane.sh" status | sed 's/^/control plane: /' || rc=1
    if ((rc == 0)); then kubectl get node "$NODE_NAME" --no-headers || rc=1; fi
  fi
  return "$rc"
}

# cmd_leftovers lists anything of the node that outlived `down`: processes,
# the namespace, mounts, cgroups, pod namespaces of its sandboxes.
cmd_leftovers() {
  local found=0 pid line c
  for pid in $(pgrep -f 'containerd|kubelet|kube-apiserver|etcd' || true); do
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

main() {
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
  *)
    sed -n '/^# Usage:/,/^$/p' "$self" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
}

main "$@"
exit
