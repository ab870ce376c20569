//go:build tools

// Package k8sbuild pins the Kubernetes commands that hack/control-plane.sh
// builds, so that `go mod tidy` keeps every module they need in go.sum. The
// build tag keeps it out of every ordinary build; the script builds the
// commands by import path.
package k8sbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
