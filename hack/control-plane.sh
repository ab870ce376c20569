#!/usr/bin/env bash
# A real, minimal Kubernetes control plane for the integration tests: etcd
# from Debian's etcd-server package and kube-apiserver built from
# k8s.io/kubernetes through the Go module proxy (hack/k8sbuild). No
# controller-manager, scheduler, kubelet or network: enough to create Pods,
# Events, ServiceAccounts and RBAC objects, to mint service-account tokens,
# and to stop and restart the API server under a client.
#
# Usage:
#   hack/control-plane.sh build [CMD...]  build kube-apiserver and kubectl (or the named commands of
#                                         k8s.io/kubernetes/cmd, e.g. kubelet) if missing; prints the binary dir
#   hack/control-plane.sh up              start etcd + kube-apiserver if not running; prints the admin kubeconfig
#   hack/control-plane.sh down            stop every process `up` started; keep only logs/ in the state dir
#   hack/control-plane.sh status          what runs (exit 0 when etcd and kube-apiserver both run)
#   hack/control-plane.sh env             KEY=VALUE lines for shells and test helpers (eval "$(... env)")
#   hack/control-plane.sh stop-apiserver  stop kube-apiserver only (etcd keeps the data); `up` restarts it
#
#   eval "$(hack/control-plane.sh env)"; hack/control-plane.sh up; kubectl --kubeconfig "$FIBGUARD_KUBECONFIG" get ns
#
# Settings (environment):
#   FIBGUARD_K8S_CACHE          binaries; default ${XDG_CACHE_HOME:-$HOME/.cache}/fibguard/k8s/$K8S_VERSION
#   FIBGUARD_CP_DIR             state (keys, certificates, etcd data, pid files, logs/); default /var/tmp/fibguard-cp
#   FIBGUARD_CP_ETCD_PORT       etcd client port, default 23890 (peer port: FIBGUARD_CP_ETCD_PEER_PORT, 23900)
#   FIBGUARD_CP_APISERVER_PORT  kube-apiserver secure port, default 16443
#   FIBGUARD_CP_BIND_ADDRESS    the address kube-apiserver listens on, default 127.0.0.1 (hack/local-cluster.sh:
#                               0.0.0.0, inside the node's own network namespace)
#   FIBGUARD_CP_ADVERTISE_ADDRESS  the address kube-apiserver advertises as the endpoint of the
#                               `kubernetes` Service, also put in its serving certificate; default none
#   FIBGUARD_CP_OWNER_PID       `up` only: also start a watchdog that runs `down` once this process has
#                               exited, so a test binary killed by a timeout leaves nothing running
#   GO                          Go toolchain; default `go` on PATH, else /usr/local/go/bin/go
#
# Build: CGO_ENABLED=0, version stamped like a release (otherwise the server
# reports v0.0.0-master+$Format:%H$), into a temporary directory beside the
# cache and renamed into place; existing binaries are never rebuilt. Cold,
# both take 7-10 minutes on 2 cores (kubectl adds about a minute to
# kube-apiserver; it is built because a machine's own kubectl may be missing
# or several minor versions away); the CI pre-builds them before `make test`.
#
# Up: a CA and a serving certificate for 127.0.0.1/localhost/kubernetes.default.svc
# (openssl), a service-account signing key, a static token file with one
# admin token (group system:masters), etcd on 127.0.0.1, kube-apiserver with
# Node,RBAC authorization and the TokenRequest API, an admin kubeconfig that
# verifies the serving certificate. Each daemon runs in its own session; its
# real PID goes to <name>.pid (recorded by the process itself before it execs,
# never `$!` of a wrapper), and `down` kills a PID only when its command line
# is still that daemon's with this state directory. Every step is idempotent,
# and concurrent invocations on one state directory serialise on a lock.
# The daemons' output goes to logs/<name>.log; `up` prints the end of the log
# of a daemon that fails to start.
#
# Exit status: 0 ok, 1 failure, 3 a prerequisite is missing (no etcd, openssl,
# curl or Go, or the build through the module proxy failed): tests skip on 3.
set -euo pipefail

K8S_VERSION=v1.37.2 # must equal k8s.io/kubernetes in hack/k8sbuild/go.mod
BINARIES=(kube-apiserver kubectl)
BUILDABLE=(kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy) # the commands hack/k8sbuild/tools.go pins

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="${here}/$(basename "${BASH_SOURCE[0]}")"
k8sbuild="${here}/k8sbuild"

bin_dir="${FIBGUARD_K8S_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard/k8s/${K8S_VERSION}}"
cp_dir="${FIBGUARD_CP_DIR:-/var/tmp/fibguard-cp}"
etcd_port="${FIBGUARD_CP_ETCD_PORT:-23890}"
etcd_peer_port="${FIBGUARD_CP_ETCD_PEER_PORT:-23900}"
apiserver_port="${FIBGUARD_CP_APISERVER_PORT:-16443}"
bind_address="${FIBGUARD_CP_BIND_ADDRESS:-127.0.0.1}"
advertise_address="${FIBGUARD_CP_ADVERTISE_ADDRESS:-}"
etcd_bin=/usr/bin/etcd
issuer=https://kubernetes.default.svc
service_cidr=10.96.0.0/16
service_ip=10.96.0.1 # the first address of service_cidr: the `kubernetes` Service

logs="${cp_dir}/logs"
log_prefix=control-plane
# shellcheck source=hack/lib/common.sh
. "${here}/lib/common.sh"
# shellcheck source=hack/lib/k8s.sh
. "${here}/lib/k8s.sh"
# shellcheck source=hack/lib/daemon.sh
. "${here}/lib/daemon.sh"
daemon_dir="$cp_dir"
daemon_logs="$logs"
daemon_prefix=()
daemon_groups=watchdog # its `sleep` goes with it
pki="${cp_dir}/pki"
kubeconfig="${cp_dir}/admin.kubeconfig"
server="https://127.0.0.1:${apiserver_port}"

# ---- build -----------------------------------------------------------------

# missing_binaries prints the BINARIES that are not executable files in bin_dir.
missing_binaries() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -f "${bin_dir}/${b}" && -x "${bin_dir}/${b}" ]] || echo "$b"
  done
}

cmd_build() {
  local missing go start b flags pkgs=()
  mapfile -t missing < <(missing_binaries)
  if ((${#missing[@]} == 0)); then
    log "${BINARIES[*]} ${K8S_VERSION} present in ${bin_dir}"
    echo "$bin_dir"
    return 0
  fi
  go="$(go_cmd)"
  mkdir -p "$bin_dir"
  # One build at a time per cache: a second caller waits and then finds the binaries.
  exec 8>"${bin_dir}/.build.lock"
  flock 8
  mapfile -t missing < <(missing_binaries)
  if ((${#missing[@]} == 0)); then
    echo "$bin_dir"
    return 0
  fi
  build_tmp="$(mktemp -d "${bin_dir}/.build.XXXXXX")" # global: the EXIT trap runs after this function
  trap 'rm -rf "$build_tmp"' EXIT
  flags="$(k8s_ldflags "$go" "$k8sbuild")"
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${b}"); done
  log "building ${missing[*]} ${K8S_VERSION} into ${bin_dir} (7-10 minutes on 2 cores when nothing is cached)"
  start=$(date +%s)
  # GOFLAGS/GOWORK cleared: the caller's -mod=vendor or go.work must not reach
  # this module; -mod=readonly: go.sum is complete, never rewritten here.
  if ! (cd "$k8sbuild" && env GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 \
    "$go" build -trimpath -ldflags "$flags" -o "${build_tmp}/" "${pkgs[@]}"); then
    missing_prerequisite "building ${missing[*]} ${K8S_VERSION} failed (is the Go module proxy reachable?)"
  fi
  for b in "${missing[@]}"; do mv -f "${build_tmp}/${b}" "${bin_dir}/${b}"; done
  log "built ${missing[*]} ${K8S_VERSION} in $(($(date +%s) - start))s"
  echo "$bin_dir"
}

# ---- processes -------------------------------------------------------------

# owns NAME PID succeeds when PID still runs the daemon NAME of this state
# directory: a recycled PID or another state directory's daemon never matches.
owns() {
  local name=$1 pid=$2 line
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  line="$(cmdline "$pid")" || return 1
  case "$name" in
  etcd) [[ "${line%% *}" == */etcd && "$line" == *" --data-dir=${cp_dir}/etcd "* ]] ;;
  kube-apiserver) [[ "${line%% *}" == */kube-apiserver && "$line" == *" --tls-cert-file=${pki}/apiserver.crt "* ]] ;;
  watchdog) [[ "$line" == *"${self} __watch ${cp_dir} "* ]] ;;
  *) return 1 ;;
  esac
}

# ---- up --------------------------------------------------------------------

lock() {
  mkdir -p "$cp_dir"
  chmod 0700 "$cp_dir"
  exec 9>"${cp_dir}/.lock"
  flock 9
}

need_tools() {
  [[ -x "$etcd_bin" ]] || missing_prerequisite "${etcd_bin} not found (apt-get install etcd-server)"
  command -v openssl >/dev/null || missing_prerequisite "openssl not found (apt-get install openssl)"
  command -v curl >/dev/null || missing_prerequisite "curl not found (apt-get install curl)"
  command -v flock >/dev/null || missing_prerequisite "flock not found (apt-get install util-linux)"
}

# make_pki creates what is missing: CA, serving certificate, service-account
# key pair, the admin token. Kept until `down`, so a restarted API server
# accepts the tokens it issued before.
make_pki() {
  mkdir -p "$pki"
  chmod 0700 "$pki"
  (
    cd "$pki"
    if [[ ! -s ca.crt ]]; then
      openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt \
        -subj "/CN=fibguard-test-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      rm -f apiserver.crt
    fi
    if [[ ! -s apiserver.crt ]]; then
      openssl req -newkey rsa:2048 -nodes -sha256 -keyout apiserver.key -out apiserver.csr \
        -subj "/CN=kube-apiserver" 2>/dev/null
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
        -out apiserver.crt -extfile <(
          echo "basicConstraints=CA:FALSE"
          echo "keyUsage=critical,digitalSignature,keyEncipherment"
          echo "extendedKeyUsage=serverAuth"
          echo "subjectAltName=IP:127.0.0.1,IP:${service_ip},${advertise_address:+IP:${advertise_address},}DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
        ) 2>/dev/null
      rm -f apiserver.csr
    fi
    if [[ ! -s sa.key ]]; then
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
      openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    fi
    if [[ ! -s admin.token ]]; then
      openssl rand -hex 24 | write_file admin.token 0600
    fi
    # token,user,uid,"group1,group2"
    echo "$(cat admin.token),admin,admin,system:masters" | write_file tokens.csv 0600
    chmod 0600 ./*.key
  )
}

write_kubeconfig() {
  write_file "$kubeconfig" 0600 <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fibguard-test
  cluster:
    server: ${server}
    certificate-authority-data: $(base64 -w0 <"${pki}/ca.crt")
users:
- name: admin
  user:
    token: $(cat "${pki}/admin.token")
contexts:
- name: fibguard-test
  context:
    cluster: fibguard-test
    user: admin
current-context: fibguard-test
EOF
}

# api METHOD PATH [BODY]: an admin request to the API server; prints the
# HTTP status (000 when it does not answer).
api() {
  local args=(-s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "${pki}/ca.crt"
    -H "Authorization: Bearer $(cat "${pki}/admin.token")" -X "$1")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data "$3")
  curl "${args[@]}" "${server}$2" 2>/dev/null || true
}

start_etcd() {
  local i
  running etcd >/dev/null && return 0
  start_daemon etcd "$etcd_bin" --name=fibguard-test --data-dir="${cp_dir}/etcd" \
    --listen-client-urls="http://127.0.0.1:${etcd_port}" --advertise-client-urls="http://127.0.0.1:${etcd_port}" \
    --listen-peer-urls="http://127.0.0.1:${etcd_peer_port}" --initial-advertise-peer-urls="http://127.0.0.1:${etcd_peer_port}" \
    --initial-cluster="fibguard-test=http://127.0.0.1:${etcd_peer_port}" --logger=zap --log-outputs=stderr
  for i in $(seq 300); do
    curl -sf --max-time 2 "http://127.0.0.1:${etcd_port}/health" >/dev/null 2>&1 && {
      log "etcd ready on 127.0.0.1:${etcd_port} (pid $(running etcd))"
      return 0
    }
    running etcd >/dev/null || fail_start etcd "etcd exited"
    sleep 0.1
  done
  fail_start etcd "etcd not healthy after 30s"
}

start_apiserver() {
  local i advertise=()
  [[ -n "$advertise_address" ]] && advertise=(--advertise-address="$advertise_address")
  if ! running kube-apiserver >/dev/null; then
    start_daemon kube-apiserver "${bin_dir}/kube-apiserver" \
      --bind-address="$bind_address" "${advertise[@]}" --secure-port="${apiserver_port}" \
      --etcd-servers="http://127.0.0.1:${etcd_port}" \
      --tls-cert-file="${pki}/apiserver.crt" --tls-private-key-file="${pki}/apiserver.key" \
      --client-ca-file="${pki}/ca.crt" \
      --token-auth-file="${pki}/tokens.csv" \
      --service-account-issuer="${issuer}" \
      --service-account-key-file="${pki}/sa.pub" --service-account-signing-key-file="${pki}/sa.key" \
      --service-cluster-ip-range="${service_cidr}" \
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
      --kubelet-preferred-address-types=InternalIP \
      --profiling=false
  fi
  # Up to 120s: a cold start costs about 4.5 CPU-seconds, and the CPUs may be busy.
  for i in $(seq 600); do
    [[ "$(api GET /readyz)" == 200 ]] && break
    running kube-apiserver >/dev/null || fail_start kube-apiserver "kube-apiserver exited"
    ((i == 600)) && fail_start kube-apiserver "kube-apiserver not ready after 120s"
    sleep 0.2
  done
  log "kube-apiserver ready on ${server} (pid $(running kube-apiserver))"
}

# ensure_default_namespace waits for the namespace `default` (the API server's
# own bootstrap creates it), and adds its ServiceAccount `default`, which
# kube-controller-manager would create and without which Pods are refused.
ensure_default_namespace() {
  local i code
  for i in $(seq 100); do
    [[ "$(api GET /api/v1/namespaces/default)" == 200 ]] && break
    ((i == 100)) && {
      code="$(api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}')"
      [[ "$code" == 201 || "$code" == 409 ]] || die "creating namespace default: HTTP ${code}"
    }
    sleep 0.1
  done
  code="$(api GET /api/v1/namespaces/default/serviceaccounts/default)"
  if [[ "$code" != 200 ]]; then
    code="$(api POST /api/v1/namespaces/default/serviceaccounts '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}')"
    [[ "$code" == 201 || "$code" == 409 ]] || die "creating serviceaccount default/default: HTTP ${code}"
  fi
}

# start_watchdog OWNER: a daemon that runs `down` when process OWNER is gone.
start_watchdog() {
  local owner=$1 since
  running watchdog >/dev/null && return 0
  since="$(start_time "$owner")" || die "FIBGUARD_CP_OWNER_PID=${owner}: no such process"
  start_daemon watchdog "$self" __watch "$cp_dir" "$owner" "$since"
}

# start_time PID prints the process's start time (field 22 of /proc/PID/stat),
# which tells a PID's process from a later one with the same PID.
start_time() {
  local stat fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  read -ra fields <<<"${stat##*) }" # fields[0] is field 3, after "pid (comm)"
  echo "${fields[19]}"
}

cmd_up() {
  local fresh=false
  need_tools
  [[ -z "$(missing_binaries)" ]] || cmd_build >/dev/null
  lock
  mkdir -p "$logs"
  # The watchdog first: an owner that dies while `up` runs must not leave
  # behind the daemons `up` is about to start.
  [[ -z "${FIBGUARD_CP_OWNER_PID:-}" ]] || start_watchdog "$FIBGUARD_CP_OWNER_PID"
  if running etcd >/dev/null && running kube-apiserver >/dev/null && [[ "$(api GET /readyz)" == 200 ]]; then
    log "already up: etcd pid $(running etcd), kube-apiserver pid $(running kube-apiserver), ${server}"
  else
    running etcd >/dev/null || fresh=true
    make_pki
    start_etcd
    start_apiserver
    ensure_default_namespace
    write_kubeconfig
    $fresh && log "up; kubectl --kubeconfig ${kubeconfig} get ns"
  fi
  echo "$kubeconfig"
}

# ---- down, status, env -----------------------------------------------------

cmd_down() {
  [[ -d "$cp_dir" ]] || {
    log "nothing to stop: no ${cp_dir}"
    return 0
  }
  lock
  stop_daemon watchdog
  stop_daemon kube-apiserver
  stop_daemon etcd
  # Everything but the logs (kept for a post-mortem) and the lock we hold.
  find "$cp_dir" -mindepth 1 -maxdepth 1 ! -name logs ! -name .lock -exec rm -rf {} +
  log "down; logs kept in ${logs}"
}

cmd_stop_apiserver() {
  lock
  stop_daemon kube-apiserver
}

cmd_status() {
  local name pid rc=0
  for name in etcd kube-apiserver watchdog; do
    if pid="$(running "$name")"; then
      echo "${name}: running, pid ${pid}"
    else
      echo "${name}: not running"
      [[ "$name" == watchdog ]] || rc=1
    fi
  done
  if ((rc == 0)); then
    echo "readyz: HTTP $(api GET /readyz)"
    echo "server: ${server}"
    echo "kubeconfig: ${kubeconfig}"
  fi
  for name in "${BINARIES[@]}"; do
    if [[ -x "${bin_dir}/${name}" ]]; then echo "${name}: ${bin_dir}/${name}"; else echo "${name}: not built"; fi
  done
  return "$rc"
}

cmd_env() {
  cat <<EOF
FIBGUARD_CP_DIR=${cp_dir}
FIBGUARD_K8S_CACHE=${bin_dir}
FIBGUARD_K8S_VERSION=${K8S_VERSION}
FIBGUARD_KUBECONFIG=${kubeconfig}
FIBGUARD_APISERVER=${server}
FIBGUARD_CA_FILE=${pki}/ca.crt
FIBGUARD_ADMIN_TOKEN_FILE=${pki}/admin.token
FIBGUARD_SA_KEY_FILE=${pki}/sa.key
FIBGUARD_SA_ISSUER=${issuer}
FIBGUARD_KUBE_APISERVER=${bin_dir}/kube-apiserver
FIBGUARD_KUBECTL=${bin_dir}/kubectl
EOF
}

# cmd_watch DIR OWNER SINCE: the watchdog's loop (internal; see start_watchdog).
cmd_watch() {
  local owner=$2 since=$3
  while [[ "$(start_time "$owner" || true)" == "$since" ]]; do sleep 1; done
  log "owner pid ${owner} has exited; stopping the control plane in ${cp_dir}"
  cmd_down
}

main() {
  case "${1:-}" in
  build)
    shift
    if (($# > 0)); then
      local b
      for b in "$@"; do
        [[ " ${BUILDABLE[*]} " == *" $b "* ]] || die "build: unknown command ${b} (one of: ${BUILDABLE[*]})"
      done
      BINARIES=("$@")
    fi
    cmd_build
    ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  stop-apiserver) cmd_stop_apiserver ;;
  __watch)
    [[ $# -eq 4 && "$2" == "$cp_dir" ]] || die "usage: $0 __watch DIR OWNER_PID START_TIME (with FIBGUARD_CP_DIR=DIR)"
    cmd_watch "$2" "$3" "$4"
    ;;
  *)
    sed -n '/^# Usage:/,/^$/p' "$self" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
}

# main and exit on one line: bash has parsed the whole file before main runs,
# so editing the script cannot disturb a running instance (the watchdog).
main "$@"; exit
