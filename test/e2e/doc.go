// Package e2e is fibguard's end-to-end suite: it runs against a real
// Kubernetes node (any kubeconfig), plays the node's primary CNI by writing
// its conflist, installs fibguard the way an operator would, and checks what
// an operator sees — pods Running and reachable, or refused with fibguard's
// Event next to kubelet's FailedCreatePodSandBox.
//
// The tests carry the build tag e2e and need a cluster:
//
//	make e2e                                   # the local node of hack/local-cluster.sh
//	hack/kind-e2e.sh                           # a two-node kind cluster, where a container engine exists
//	make e2e-kind                              # the same, engine, node image and kind built here
//
// Settings come from FIBGUARD_E2E_* environment variables (see config in
// config_test.go); hack/local-cluster.sh writes them for its node.
//
// It is written with plain client-go and wait.PollUntilContextTimeout rather
// than sigs.k8s.io/e2e-framework: every step is a condition on API objects
// or on a command run on the node, client-go is already a dependency, and the
// framework would add its own module graph for little.
package e2e
