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
// Limits: the plugin reads the whole routing state of the host namespace
// on every ADD and CHECK; CNI_ARGS and runtimeConfig are ignored; the
// Kubernetes fields of the configuration (kubeconfig, events,
// eventTimeout, nodeName) are validated but not used yet.
//
// docs/plugin.md documents the configuration, the error codes and an
// example conflist.
package plugin
