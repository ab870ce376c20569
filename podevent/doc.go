// Package podevent records the Kubernetes Event that tells an operator
// why fibguard refused, or in warn mode would have refused, a pod's
// network: `kubectl describe pod` lists it next to kubelet's
// FailedCreatePodSandBox, which only carries the CNI error's first line.
//
// The Events are core/v1 Events, the API and shape kubelet uses for its
// own: type Warning, reason PodNetworkRejected or PodNetworkWarning, the
// error findings in the message, source component "fibguard" on the node,
// and the Pod (with its UID, which `kubectl describe` filters on) as the
// involved object.
//
// Kubelet retries a failed sandbox every few seconds, for as long as the
// pod exists, and each retry runs a new plugin process that remembers
// nothing. So an Event has a name derived from the pod's UID and the
// reason, and a repeat increments the count of the existing Event instead
// of creating another. This needs no list, watch or get on events: the
// Recorder reads the current count with an empty PATCH and writes count+1
// with a PATCH conditional on the resourceVersion it read. The rights
// needed are exactly Rules: events create and patch, and pods get (only
// used when CNI_ARGS lacks K8S_POD_UID).
//
// The verdict on the pod must never depend on the API server, so Record
// gives up after its timeout whatever the server does, and the client is
// built only when an Event is recorded: a process that records none pays
// nothing but the package initialisation of client-go's rest and clientcmd
// packages. Building with the tag fibguard_nok8s leaves client-go out; the
// Recorder then reports ErrNotBuilt.
package podevent
