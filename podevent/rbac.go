package podevent

// Rule is one rule of an RBAC role, with the field names of
// rbac.authorization.k8s.io/v1 PolicyRule, so that it compares with a
// manifest's rules once decoded.
type Rule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
}

// Rules are the rights the Recorder needs, and all it needs: create and
// patch Events (no list, watch or get: see the package documentation for
// how repeats are counted without them), and get Pods, to learn a pod's
// UID when CNI_ARGS lacks K8S_POD_UID. The ClusterRole that the
// manifests give the plugin's service account must grant exactly these;
// the tests compare them.
func Rules() []Rule {
	return []Rule{
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	}
}
