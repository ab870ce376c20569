// Package kube records fibguard's pod Events (package podevent) in a
// Kubernetes API server, through k8s.io/client-go.
//
// Only the event binary, cmd/fibguard-event, links it: client-go's
// package initialisation and size would otherwise be paid by every run of
// the plugin, which records an Event only when it rejects or warns.
//
// Kubelet retries a failed sandbox every few seconds, for as long as the
// pod exists, and each retry runs a new process that remembers nothing.
// So an Event's name is derived from the pod's UID and the reason
// (EventName), and a repeat increments the count of the existing
// Event instead of creating another. This needs no list, watch or get on
// events: the Recorder reads the current count with an empty PATCH and
// writes count+1 with a PATCH conditional on the resourceVersion it read.
// The rights needed are exactly podevent.Rules: events create and patch,
// and pods get (only used when CNI_ARGS lacks K8S_POD_UID).
//
// The verdict on the pod must never depend on the API server, so Record
// gives up after its timeout whatever the server does, and retries
// nothing but a conflicting concurrent update.
package kube
