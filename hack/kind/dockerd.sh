#!/usr/bin/env bash
# A Docker engine of fibguard's own for kind (hack/kind-e2e.sh with
# FIBGUARD_KIND_LOCAL_IMAGE=1), that leaves the machine's network and mount
# table alone and runs privileged containers where this machine's capability
# bounding set is incomplete.
#
#   - dockerd (Debian's docker.io) runs in a network namespace of its own
#     ("fibguard-kind"): the bridges, veths, addresses, routes and iptables
#     rules it and kind create are all in there, as is every port a container
#     publishes (kind's API server port on 127.0.0.1): run kind, kubectl and
#     the suite with `hack/kind/dockerd.sh exec CMD...`. The Docker socket is
#     a file, so `docker` itself works from anywhere with DOCKER_HOST set.
#   - and in a mount namespace of its own (propagation from the machine in,
#     none out): its overlay mounts, the containers' mounts and network
#     namespace files stay out of the machine's mount table, and vanish with
#     the last of its processes.
#   - its own data root (kept between runs: the node image is the slow part),
#     exec root, pid file and socket; containers' cgroups under
#     /<controller>/fibguard-kind, which `down` removes.
#   - its default runtime is runcwrap (hack/kind/runcwrap): runc, after
#     removing from the OCI spec the capabilities this machine's bounding set
#     lacks. Docker asks runc for every capability the kernel knows for a
#     privileged container; on a VM without CAP_SYS_RESOURCE runc then fails
#     with "unable to apply caps: operation not permitted". On a machine
#     with a full bounding set the wrapper changes nothing.
#
# Usage:
#   hack/kind/dockerd.sh up         start it (builds runcwrap if needed); prints the env file (DOCKER_HOST=...)
#   hack/kind/dockerd.sh down       remove all its containers and networks, stop dockerd, its containerd and
#                                   shims, delete the namespace and cgroups; keeps the data root (images)
#   hack/kind/dockerd.sh status     exit 0 when it answers
#   hack/kind/dockerd.sh leftovers  what `down` should have removed and did not (exit 1 if any)
#   hack/kind/dockerd.sh exec CMD...  CMD in the engine's network namespace, DOCKER_HOST set
#   hack/kind/dockerd.sh selftest   a privileged container from an image built here (busybox, `docker
#                                   import`), `docker exec` into it, its capabilities; then removed
#   hack/kind/dockerd.sh purge      down, then delete the data root too
#
# Settings (environment):
#   FIBGUARD_KIND_DIR   state: data root, logs (default /var/tmp/fibguard-kind)
#   FIBGUARD_KIND_NETNS network namespace (default fibguard-kind)
#
# Exit status: 0; 1 on failure; 3 when a prerequisite is missing (not root,
# no dockerd, iptables or Go).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=fibguard-kind
netns="${FIBGUARD_KIND_NETNS:-${name}}"
dir="${FIBGUARD_KIND_DIR:-/var/tmp/${name}}"
run="/run/${netns}"               # socket, pid files, exec root
sock="unix://${run}/docker.sock"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/fibguard/kind"
wrap="${cache}/bin/runcwrap"
runtime=fibguard-runcwrap
cgroup_parent="${netns}"
dockerd_bin="${DOCKERD:-/usr/sbin/dockerd}"
docker_bin="${DOCKER:-/usr/bin/docker}" # Debian's; /usr/local/bin/docker may be another client

log_prefix=kind-dockerd
# shellcheck source=hack/lib/common.sh
. "${here}/../lib/common.sh"

daemon_dir="${run}/pids"
daemon_logs="${dir}/logs"
# shellcheck disable=SC2034 # used by hack/lib/daemon.sh
daemon_prefix=(nsenter "--net=/run/netns/${netns}" unshare --mount --propagation slave --)
# shellcheck disable=SC2034 # used by hack/lib/daemon.sh
daemon_groups=""
owns() {
  local line
  [[ "$2" =~ ^[0-9]+$ ]] || return 1
  line="$(cmdline "$2")" || return 1
  [[ "$1" == dockerd && "${line%% *}" == */dockerd && "$line" == *" --exec-root ${run}/exec "* ]]
}
# shellcheck source=hack/lib/daemon.sh
source "${here}/../lib/daemon.sh"

docker() { DOCKER_HOST="$sock" "$docker_bin" "$@"; }

need_root() { ((EUID == 0)) || missing_prerequisite "must run as root (network namespaces, dockerd)"; }

# build_wrapper builds runcwrap into the cache when missing or older than its source.
build_wrapper() {
  local go src newer
  src="${here}/runcwrap"
  if [[ -x "$wrap" ]]; then
    newer="$(find "$src" -newer "$wrap" -type f | head -n1)"
    [[ -z "$newer" ]] && return 0
  fi
  go="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
  [[ -x "$go" ]] || missing_prerequisite "Go not found: needed to build ${src}"
  mkdir -p "${cache}/bin"
  log "building ${wrap}"
  (cd "$src" && env GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 "$go" build -trimpath -o "${wrap}.tmp" .)
  mv -f "${wrap}.tmp" "$wrap"
}

cmd_up() {
  need_root
  [[ -x "$dockerd_bin" ]] || missing_prerequisite "${dockerd_bin} not found (apt-get install docker.io)"
  [[ -x "$docker_bin" ]] || missing_prerequisite "${docker_bin} not found (apt-get install docker.io)"
  command -v iptables >/dev/null || missing_prerequisite "iptables not found (apt-get install iptables): kind's network needs it"
  { command -v nsenter && command -v unshare; } >/dev/null || missing_prerequisite "nsenter/unshare not found (util-linux)"
  if docker version >/dev/null 2>&1; then
    log "already up (${sock})"
    echo "${dir}/env"
    return 0
  fi
  build_wrapper
  mkdir -p "$dir/docker" "$daemon_logs" "$daemon_dir" "${run}/exec"
  if [[ ! -e "/run/netns/${netns}" ]]; then
    ip netns add "$netns"
  fi
  ip -n "$netns" link set lo up
  # kind bind-mounts /lib/modules into every node (read-only, for modprobe and
  # kube-proxy); Docker refuses a bind mount whose source is missing, as it is
  # on VMs with a kernel without modules. Create it empty, and say so: down
  # removes it again.
  if [[ ! -e /lib/modules ]]; then
    mkdir /lib/modules
    touch "${run}/created-lib-modules"
    log "created an empty /lib/modules (this kernel has no modules; kind mounts it into its nodes)"
  fi
  # --cgroup-parent: every container's cgroup under one root that down removes.
  # --iptables/--ip-forward act on the namespace's own tables and sysctls.
  start_daemon dockerd "$dockerd_bin" \
    --data-root "${dir}/docker" --exec-root "${run}/exec" --pidfile "${run}/docker.pid" \
    -H "$sock" --cgroup-parent "/${cgroup_parent}" \
    --add-runtime "${runtime}=${wrap}" --default-runtime "$runtime" \
    --storage-driver overlay2 --log-driver json-file
  local i
  for i in $(seq 120); do
    docker version >/dev/null 2>&1 && break
    running dockerd >/dev/null || fail_start dockerd "dockerd exited"
    sleep 0.25
  done
  docker version >/dev/null 2>&1 || fail_start dockerd "dockerd did not answer on ${sock} in 30s"
  printf 'DOCKER_HOST=%s\nFIBGUARD_KIND_NETNS=%s\n' "$sock" "$netns" | write_file "${dir}/env" 0644
  log "up: DOCKER_HOST=${sock}, network namespace ${netns}, runtime ${runtime} (${wrap})"
  echo "${dir}/env"
}

# netns_pids prints the PIDs of processes in the namespace (dockerd,
# containerd, shims; containers have namespaces of their own).
netns_pids() {
  if [[ -e "/run/netns/${netns}" ]]; then ip netns pids "$netns" 2>/dev/null || true; fi
}

remove_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/"${cgroup_parent}"; do
    [[ -d "$c" ]] || continue
    # Leaves first: a cgroup directory can only be removed once it has no children.
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d "$c" ]] && log "cgroup ${c} still has processes"
  done
  return 0
}

cmd_down() {
  need_root
  local ids pid i
  if docker version >/dev/null 2>&1; then
    ids="$(docker ps -aq)"
    if [[ -n "$ids" ]]; then
      log "removing containers: $(echo "$ids" | tr '\n' ' ')"
      # shellcheck disable=SC2086 # one ID per word
      docker rm -f -v $ids >/dev/null || log "docker rm failed"
    fi
    docker network prune -f >/dev/null || log "docker network prune failed"
  fi
  stop_daemon dockerd
  # dockerd stops its containerd; whatever is still in the namespace was
  # started by it (a shim of a container that would not die).
  for i in $(seq 40); do
    [[ -z "$(netns_pids)" ]] && break
    ((i == 20)) && for pid in $(netns_pids); do
      log "killing leftover pid ${pid}: $(cmdline "$pid")"
      kill -KILL "$pid" 2>/dev/null || true
    done
    sleep 0.25
  done
  [[ -z "$(netns_pids)" ]] || die "processes survived in ${netns}: $(netns_pids | tr '\n' ' ')"
  if [[ -e "/run/netns/${netns}" ]]; then
    ip netns delete "$netns"
  fi
  remove_cgroups
  if [[ -e "${run}/created-lib-modules" ]]; then
    rmdir /lib/modules 2>/dev/null || log "/lib/modules, which up created, is not empty: left"
  fi
  rm -rf "$run"
  log "down (data root ${dir}/docker kept)"
}

cmd_leftovers() {
  local found=0 c
  if running dockerd >/dev/null; then echo "dockerd $(running dockerd)"; found=1; fi
  if [[ -e "/run/netns/${netns}" ]]; then echo "netns ${netns} (pids: $(netns_pids | tr '\n' ' '))"; found=1; fi
  if grep -q -e "$run" -e "/run/netns/${netns}" /proc/self/mountinfo; then
    grep -e "$run" -e "/run/netns/${netns}" /proc/self/mountinfo | sed 's/^/mount /'
    found=1
  fi
  for c in /sys/fs/cgroup/*/"${cgroup_parent}"; do
    [[ -d "$c" ]] && { echo "cgroup ${c}"; found=1; }
  done
  [[ -e "$run" ]] && { echo "directory ${run}"; found=1; }
  return $((found))
}

cmd_selftest() {
  docker version >/dev/null 2>&1 || die "not up: run hack/kind/dockerd.sh up"
  local busybox tmp id caps
  busybox="$(command -v busybox || echo /bin/busybox)"
  [[ -x "$busybox" ]] || missing_prerequisite "busybox not found (apt-get install busybox-static)"
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '${tmp}'" RETURN
  mkdir -p "${tmp}/rootfs/bin"
  cp "$busybox" "${tmp}/rootfs/bin/busybox"
  for c in sh sleep cat grep id; do ln -s busybox "${tmp}/rootfs/bin/${c}"; done
  tar -C "${tmp}/rootfs" -cf "${tmp}/rootfs.tar" .
  docker import -c 'CMD ["/bin/sleep", "600"]' "${tmp}/rootfs.tar" fibguard.local/kind-selftest:latest >/dev/null
  id="$(docker run -d --privileged --name fibguard-kind-selftest fibguard.local/kind-selftest:latest)"
  caps="$(docker exec "$id" grep Cap /proc/self/status)" || {
    docker rm -f "$id" >/dev/null
    die "docker exec into a privileged container failed"
  }
  docker rm -f "$id" >/dev/null
  docker rmi fibguard.local/kind-selftest:latest >/dev/null
  log "privileged container ran and docker exec worked; its capabilities:"
  echo "$caps"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status)
  docker version --format 'dockerd {{.Server.Version}} on '"${sock}" || exit 1
  ;;
leftovers) cmd_leftovers ;;
exec)
  shift
  (($# > 0)) || die "exec: no command"
  [[ -e "/run/netns/${netns}" ]] || die "not up: no network namespace ${netns}"
  exec env DOCKER_HOST="$sock" nsenter "--net=/run/netns/${netns}" -- "$@"
  ;;
selftest) cmd_selftest ;;
purge)
  cmd_down
  log "deleting ${dir}"
  rm -rf "$dir"
  ;;
*)
  sed -n '/^# Usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
