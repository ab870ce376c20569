package podevent

// Rule is one rule of an RBAC role, with the field names of
// rbac.authorization.k8s.io/v1 PolicyRule, so that it compares with a
// manifest's rules once decoded.
type Rule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
}

// Rules are the rights the Recorder needs, and all it needs by default:
// create and patch Events (no list, watch or get: see the package
// documentation for how repeats are counted without them). The
// ClusterRole that the manifests give the plugin's service account must
// grant exactly these; the tests compare them.
//
// No get on pods: the Event names the pod by its UID, which the runtime
// passes in CNI_ARGS as K8S_POD_UID — containerd since 1.6.0 and 1.5.3
// (containerd/containerd#5640, backported in #5643, June 2021), CRI-O
// since 1.22.0 and in 1.20 and 1.21 after the backports of
// cri-o/cri-o#5026 (#5028, #5029; ocicni#91), i.e. every runtime a
// supported Kubernetes runs on. Without it (cri-dockerd, built from
// dockershim, passes K8S_POD_NAMESPACE, K8S_POD_NAME and
// K8S_POD_INFRA_CONTAINER_ID only; older runtimes), the Recorder asks the
// API server for the pod's UID, which needs PodsGetRules: the kustomize
// component manifests/components/pods-get and the chart's rbac.podsGet
// grant them. Refused, the Event is not recorded and the plugin logs one
// line saying why; the verdict is the same.
func Rules() []Rule {
	return []Rule{
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// PodsGetRules are the rights the option adds to Rules for runtimes that
// do not pass K8S_POD_UID: get on pods, to read a pod's UID.
func PodsGetRules() []Rule {
	return []Rule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	}
}
