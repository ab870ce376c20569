#!/bin/bash
# cgroup v2: create /kubelet and /kubelet.slice with every controller the
# root has enabled for its children. Runs as kubelet's ExecStartPre, after
# systemd has emptied the root cgroup (its subtree_control can only be
# written then).
set -euo pipefail
[[ -f /sys/fs/cgroup/cgroup.controllers ]] || {
  echo "kubelet-cgroup-v2.sh: not a cgroup v2 node" >&2
  exit 1
}
enable_all() { sed -e 's/^/+/' -e 's/ / +/g' "/sys/fs/cgroup/$1/cgroup.controllers" >"/sys/fs/cgroup/$1/cgroup.subtree_control"; }
enable_all /
for g in kubelet kubelet.slice; do
  mkdir -p "/sys/fs/cgroup/${g}"
  enable_all "$g"
done
