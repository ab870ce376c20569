#!/usr/bin/env bash
# Builds the reference CNI plugins that the integration tests (test/integration)
# chain fibguard with, from github.com/containernetworking/plugins at a pinned
# version, through the Go module proxy: no release tarball, no internet beyond
# what `go install` already uses.
#
# Usage:  hack/cni-plugins.sh            # builds if needed, prints the directory
#         dir=$(hack/cni-plugins.sh | tail -n1)
#
# Plugins: bridge, host-local, ptp, loopback (what the tests run), portmap (a
# common chain member) and tuning (the "one more exec" baseline of the plugin
# benchmark).
#
# Directory: $FIBGUARD_CNI_BIN if set, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/fibguard/cni-plugins/$CNI_PLUGINS_VERSION.
# Idempotent: when every plugin is already there (as an executable file), it
# builds nothing. A set FIBGUARD_CNI_BIN may point at an existing plugin
# directory such as /opt/cni/bin; only missing plugins are ever added to it,
# and existing files are never replaced.
# Each binary is built into a temporary directory beside the target and
# renamed into place, so an interrupted or concurrent run never leaves a
# half-written plugin behind.
#
# The version must match github.com/containernetworking/plugins in go.mod,
# which the tests use for pkg/ns; override with CNI_PLUGINS_VERSION=vX.Y.Z.
# Go: $GO, else `go` on PATH, else /usr/local/go/bin/go (sudo drops it from PATH).
#
# Output: progress on stderr; the directory, alone, on the last line of stdout.
set -euo pipefail

CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
MODULE=github.com/containernetworking/plugins
PLUGINS=(
  main/bridge
  ipam/host-local
  main/ptp
  main/loopback
  meta/portmap
  meta/tuning
)

GO="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
if [[ ! -x "$GO" ]] && ! command -v "$GO" >/dev/null 2>&1; then
  echo "cni-plugins: Go not found (set GO=/path/to/go)" >&2
  exit 1
fi

cache_root="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}"
dir="${FIBGUARD_CNI_BIN:-${cache_root}/fibguard/cni-plugins/${CNI_PLUGINS_VERSION}}"

missing=()
for p in "${PLUGINS[@]}"; do
  [[ -f "${dir}/${p##*/}" && -x "${dir}/${p##*/}" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "cni-plugins: all ${#PLUGINS[@]} plugins present in ${dir}" >&2
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
tmp="$(mktemp -d "${dir}/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

pkgs=()
for p in "${missing[@]}"; do
  pkgs+=("${MODULE}/plugins/${p}@${CNI_PLUGINS_VERSION}")
done
echo "cni-plugins: building ${missing[*]##*/} at ${CNI_PLUGINS_VERSION} into ${dir}" >&2
start=$(date +%s)
# From outside any module and without the caller's GOFLAGS (e.g. -mod=vendor),
# so the pinned version is resolved on its own and go.mod is never touched.
(cd "$tmp" && env GOFLAGS= GOBIN="$tmp" CGO_ENABLED=0 "$GO" install "${pkgs[@]}")

for p in "${missing[@]}"; do
  name="${p##*/}"
  # mv -n: a concurrent run may have put the same plugin there first; keep it.
  mv -n "${tmp}/${name}" "${dir}/${name}"
done
echo "cni-plugins: built ${#missing[@]} plugins in $(( $(date +%s) - start ))s" >&2
echo "$dir"
