#!/usr/bin/env bash
# Releases reference fibguard's image by digest: a tag such as v0.1.0 can be
# pushed again with other contents, and with imagePullPolicy IfNotPresent a
# node keeps whichever it pulled first; a digest names exactly one image.
#
# Usage:
#   hack/release.sh              build the image (hack/build-image.sh), then pin
#                                its digest in the kustomize base and the chart
#   hack/release.sh pin DIGEST   only pin DIGEST (sha256:<64 hex>)
#   hack/release.sh unpin        back to the tag, for development builds
#
# Pinning writes DIGEST into manifests/base/kustomization.yaml (its images:
# entry: digest instead of newTag, so kustomize renders repository@digest)
# and charts/fibguard/values.yaml (image.digest, which the chart renders as
# repository@digest): both deploy the same reference, which test/manifests
# checks. The digest is that of the image manifest in the archive's
# index.json, which `skopeo copy oci-archive:... docker://...` keeps: the
# registry then serves the image under this digest. Build from the commit
# being released and commit the pinned files on top of it: the pinned
# commit does not change the binaries, only SOURCE_DATE_EPOCH and the
# revision label, which is why the digest comes from the build, not from a
# rebuild of the pinned commit.
#
# Unreleased development builds keep the tag (unpin): their images are
# loaded into the nodes (kind load, ctr import), not pulled, and change with
# every commit.
#
# Settings (environment): those of hack/build-image.sh; RELEASE_ROOT, the
# tree whose manifests are edited (default: this checkout).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tree="${RELEASE_ROOT:-$root}"
kustomization="${tree}/manifests/base/kustomization.yaml"
values="${tree}/charts/fibguard/values.yaml"

die() { echo "release: $*" >&2; exit 1; }

# digest_of prints the digest of the image manifest of an OCI archive, once
# the manifest blob is checked to have that digest.
digest_of() {
  local archive="$1" digest hex
  digest="$(tar -xOf "$archive" index.json | grep -o '"digest" *: *"sha256:[0-9a-f]\{64\}"' | head -n 1 | grep -o 'sha256:[0-9a-f]\{64\}')" ||
    die "${archive}: index.json names no sha256 manifest"
  hex="${digest#sha256:}"
  [[ "$(tar -xOf "$archive" "blobs/sha256/${hex}" | sha256sum | cut -d' ' -f1)" == "$hex" ]] ||
    die "${archive}: the manifest blob does not have the digest index.json gives it"
  echo "$digest"
}

# replace_line replaces the one line of file matching pattern (an extended
# regular expression) with text; anything but exactly one match is an error.
replace_line() {
  local file="$1" pattern="$2" text="$3" n
  n="$(grep -cE "$pattern" "$file" || true)"
  [[ "$n" == 1 ]] || die "${file}: ${n} lines match ${pattern}, want 1"
  local tmp="${file}.release-tmp"
  awk -v pat="$pattern" -v text="$text" '$0 ~ pat { print text; next } { print }' "$file" >"$tmp"
  mv "$tmp" "$file"
}

pin() {
  local digest="$1"
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "${digest}: not a digest (sha256:<64 lowercase hex>)"
  replace_line "$kustomization" '^    (newTag|digest): ' "    digest: ${digest}"
  replace_line "$values" '^  digest: ' "  digest: \"${digest}\""
  echo "release: pinned ${digest} in ${kustomization} and ${values}" >&2
}

unpin() {
  local version
  version="$(grep -E '^appVersion: ' "${tree}/charts/fibguard/Chart.yaml" | sed -E 's/^appVersion: *"?([^"]*)"?$/\1/')"
  [[ -n "$version" ]] || die "no appVersion in Chart.yaml"
  replace_line "$kustomization" '^    (newTag|digest): ' "    newTag: ${version}"
  replace_line "$values" '^  digest: ' '  digest: ""'
  echo "release: ${kustomization} and ${values} reference the tag ${version}" >&2
}

case "${1:-}" in
  pin) [[ $# == 2 ]] || die "usage: hack/release.sh pin sha256:<64 hex>"; pin "$2" ;;
  unpin) unpin ;;
  "")
    archive="$("${root}/hack/build-image.sh" | tail -n 1)"
    pin "$(digest_of "$archive")"
    ;;
  *) die "usage: hack/release.sh [pin DIGEST | unpin]" ;;
esac
