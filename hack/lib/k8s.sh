# shellcheck shell=bash
# The version stamp of the Kubernetes commands built here (sourced, not run):
# hack/control-plane.sh's builds and hack/kind/k8s.sh's kubeadm carry the
# same. Needs hack/lib/common.sh.

# k8s_ldflags GO K8SBUILD_DIR: the -ldflags of a build of K8S_VERSION, the
# version the module in K8SBUILD_DIR (hack/k8sbuild) requires, stamped the
# way release builds are; the build date is the release commit's time, so
# the same inputs give the same binary.
k8s_ldflags() {
  local go=$1 dir=$2 minor when v version
  minor="${K8S_VERSION:?}"
  minor="${minor#v1.}"
  minor="${minor%%.*}"
  read -r version when < <(cd "$dir" && env GOFLAGS=-mod=readonly GOWORK=off \
    "$go" list -m -f '{{.Version}} {{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  [[ -n "$version" ]] || missing_prerequisite "cannot resolve k8s.io/kubernetes in ${dir} (is the Go module proxy reachable?)"
  [[ "$version" == "$K8S_VERSION" ]] ||
    die "${dir}/go.mod requires k8s.io/kubernetes ${version:-?}, the scripts say ${K8S_VERSION}: change both"
  printf -- '-s -w'
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- ' -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=%s' \
      "$v" "$K8S_VERSION" "$v" "$v" "$minor" "$v" "$v" "$when"
  done
}
