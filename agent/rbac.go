package agent

import "github.com/fibguard/fibguard/podevent"

// Rules are the rights the agent needs beyond the plugin's
// (podevent.Rules, for its Events): list and watch the Node objects, for
// this node's pod CIDRs and the other nodes' addresses and pod CIDRs
// (package cluster). The manifests' ClusterRole fibguard-agent grants
// exactly these; the tests in test/manifests compare them.
func Rules() []podevent.Rule {
	return []podevent.Rule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}},
	}
}
