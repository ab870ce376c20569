// Package podevent is the Kubernetes Event that tells an operator why
// fibguard refused, or in warn mode would have refused, a pod's network:
// `kubectl describe pod` lists it next to kubelet's
// FailedCreatePodSandBox, which only carries the CNI error's first line.
//
// The Events are core/v1 Events, the API and shape kubelet uses for its
// own: type Warning, reason PodNetworkRejected or PodNetworkWarning, the
// error findings in the message, source component "fibguard" on the node,
// and the Pod (with its UID, which `kubectl describe` filters on) as the
// involved object. Kubelet's retries of a pod update one Event, whose
// name (Name) the retries share, instead of creating more.
//
// This package is what the plugin needs to have an Event recorded, and no
// more: the pod from CNI_ARGS, the Event's content, the rights it takes
// (Rules), and the hand-over to the event binary, cmd/fibguard-event,
// which records it through client-go (package podevent/kube). The plugin
// runs the event binary (Send) only when it rejects or warns, so its
// accept path, which is nearly every run, neither links nor initialises a
// Kubernetes client. The package must not import client-go: a test of
// cmd/fibguard checks that the plugin binary does not link it.
package podevent
