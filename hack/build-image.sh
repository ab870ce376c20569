#!/usr/bin/env bash
# Builds fibguard's container image without a container engine: static
# binaries (CGO_ENABLED=0) of cmd/fibguard-install, cmd/fibguard-agent,
# cmd/fibguard and cmd/fibguard-event, put on
# an empty (scratch) base by hack/imagebuild (go-containerregistry), written
# as one archive that is an OCI image layout and also carries Docker's
# manifest.json. Load it with `kind load image-archive`, `ctr -n k8s.io
# images import`, `podman load` or `docker load` (docs/install.md).
#
# Usage:  hack/build-image.sh [OUT]      default OUT: bin/fibguard-image.tar
#
# In the image:
#   /usr/local/bin/fibguard-install   the entrypoint (the DaemonSet's installer)
#   /usr/local/bin/fibguard-agent     the DaemonSet's node agent (its container's command)
#   /opt/fibguard/fibguard            the plugin it copies to the node
#   /opt/fibguard/fibguard-event      the event binary it copies next to the plugin
#                                     (the plugin runs it to record Kubernetes Events)
#
# Settings (environment):
#   IMAGE              name and tag; default ghcr.io/fibguard/fibguard:v0.1.0, the
#                      image manifests/base/kustomization.yaml deploys
#   GOARCH             the platform (linux/GOARCH); default `go env GOARCH`.
#                      GOARM (arm) sets the variant
#   VERSION            the version the binaries report (--version, the plugin's CNI
#                      "about" text and the user agent of its Events); default IMAGE's tag
#   SOURCE_DATE_EPOCH  the time every date in the image says; default the time
#                      of the HEAD commit, so the same commit gives the same
#                      image digest
#   GO                 Go toolchain; default `go` on PATH, else /usr/local/go/bin/go
#
# Output: progress and the image's contents on stderr; the archive's path,
# alone, on the last line of stdout. The archive is written to a temporary
# file and renamed: an interrupted build leaves the previous one intact.
set -euo pipefail

IMAGE="${IMAGE:-ghcr.io/fibguard/fibguard:v0.1.0}"
VERSION="${VERSION:-${IMAGE##*:}}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
go="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
command -v "$go" >/dev/null 2>&1 || { echo "build-image: Go not found (set GO=/path/to/go)" >&2; exit 1; }

out="${1:-${root}/bin/fibguard-image.tar}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

arch="${GOARCH:-$("$go" env GOARCH)}"
variant=""
case "$arch" in
arm64) variant=v8 ;;
arm) variant="v${GOARM:-7}" ;;
esac
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}"
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "build-image: building fibguard, fibguard-event, fibguard-install and fibguard-agent for linux/${arch}" >&2
# -trimpath and no VCS stamping: the binaries depend on the sources only.
(cd "$root" && env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOWORK=off \
  "$go" build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/fibguard/fibguard/plugin.release=${VERSION} -X github.com/fibguard/fibguard/internal/version.Release=${VERSION}" \
  -o "${work}/" ./cmd/fibguard ./cmd/fibguard-event ./cmd/fibguard-install ./cmd/fibguard-agent)
if command -v file >/dev/null; then
  for b in fibguard fibguard-event fibguard-install fibguard-agent; do
    info="$(file -b "${work}/${b}")"
    [[ "$info" == *"statically linked"* ]] || { echo "build-image: ${b} is not statically linked: ${info}" >&2; exit 1; }
  done
fi

# The image tool is a module of its own (hack/imagebuild/go.mod), built for
# this machine, not for the image's platform.
(cd "${root}/hack/imagebuild" && env -u GOOS -u GOARCH -u GOARM GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
  "$go" build -o "${work}/imagebuild" .)

"${work}/imagebuild" build -out "$out" -ref "$IMAGE" \
  -add /usr/local/bin/fibguard-install="${work}/fibguard-install" \
  -add /usr/local/bin/fibguard-agent="${work}/fibguard-agent" \
  -add /opt/fibguard/fibguard="${work}/fibguard" \
  -add /opt/fibguard/fibguard-event="${work}/fibguard-event" \
  -entrypoint /usr/local/bin/fibguard-install \
  -env PATH=/usr/local/bin \
  -os linux -arch "$arch" -variant "$variant" -created "$epoch" \
  -label org.opencontainers.image.title=fibguard \
  -label org.opencontainers.image.description="fibguard CNI plugin, its installer and its node agent" \
  -label org.opencontainers.image.source=https://github.com/fibguard/fibguard \
  -label org.opencontainers.image.version="$VERSION" \
  -label org.opencontainers.image.revision="$revision" >&2
# Read back as a runtime would: digests, manifest.json, static binaries.
"${work}/imagebuild" inspect "$out" >&2
echo "$out"
