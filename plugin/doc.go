// Package plugin is the fibguard CNI plugin: chained after the plugin that
// creates the pod's interface (bridge, ptp...), it checks on ADD that the
// kernel will really route the pod's addresses to the pod, using the fib
// model of the host and pod namespaces and the checks of package checker,
// and refuses the pod with a readable reason when it will not.
//
// fibguard changes nothing: on success it passes the previous result on
// unchanged, and DEL, GC and STATUS have nothing to undo or report beyond
// the configuration's validity. It implements CNI spec 1.1 on top of the
// reference library's skel, for cniVersion 0.3.0 to 1.1.0.
//
// Of the host namespace, ADD and CHECK read only what the lookups of the
// pod's addresses need (live.LoadFor: rules, table local and the route
// the kernel matches for each address), so a node with a full routing
// table costs no more than any other; the pod's namespace is read whole.
//
// With a kubeconfig, a rejection (or, in warn mode, a rejection waived)
// is also recorded as a Kubernetes Event on the pod that CNI_ARGS names:
// the plugin runs the event binary, cmd/fibguard-event, which links
// client-go, and hands it the Event (package podevent). The plugin itself
// does not link client-go, so the accept path — nearly every run — and
// DEL neither talk to the API server nor pay for a client's start-up. The
// verdict never depends on the Event: the event binary's failures, the
// API server's and a missing event binary are only logged, and the event
// binary is killed at eventTimeout.
//
// Limits: runtimeConfig is ignored; of CNI_ARGS only the pod's namespace,
// name and UID are read, and only to record an Event.
//
// docs/plugin.md documents the configuration, the error codes and an
// example conflist.
package plugin
