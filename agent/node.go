package agent

import (
	"net/netip"
	"slices"

	"github.com/fibguard/fibguard/checker"
)

// NodeCodes are the node-wide checks (checker.CheckNode).
var NodeCodes = []checker.Code{
	checker.CodeLoopbackNetwork, checker.CodeHoldsNodeAddress,
	checker.CodeOverlapsNodeCIDR, checker.CodeNetworkOverlapsService,
}

// ClusterView is what the Node objects say of this node and the others.
type ClusterView struct {
	// Node and NodeUID name this node's Node object, for Events about it.
	Node, NodeUID string
	// PodCIDRs are this node's spec.podCIDRs.
	PodCIDRs []netip.Prefix
	// Others are the other nodes, with their addresses and pod CIDRs.
	Others []checker.Node
}

// ClusterSource follows the cluster's Node objects.
type ClusterSource interface {
	// View returns the latest view, and false until there is one.
	View() (ClusterView, bool)
	// Changed receives a value when the view changed.
	Changed() <-chan struct{}
}

// NodeVerdict is the outcome of the node-wide checks in a round.
type NodeVerdict struct {
	View     ClusterView
	Findings []checker.Finding
}

// NodeTransition is the node's pod networks changing state.
type NodeTransition struct {
	Kind    Kind
	Verdict NodeVerdict
	Changes []string
}

// checkNode runs the node-wide checks on this node's pod networks: its
// spec.podCIDRs and the IPAM ranges of its primary CNI configuration,
// against the other nodes and the service CIDRs the attachments'
// fibguard entries name.
func checkNode(view ClusterView, ranges []checker.PodNetwork, atts []*Attachment) NodeVerdict {
	nets := slices.Clone(ranges)
	for _, p := range view.PodCIDRs {
		nets = append(nets, checker.PodNetwork{Prefix: p, Source: "spec.podCIDRs of node " + view.Node})
	}
	var services []netip.Prefix
	for _, a := range atts {
		for _, s := range a.Config.ServiceCIDRs {
			if !slices.Contains(services, s) {
				services = append(services, s)
			}
		}
	}
	in := checker.NodeInput{PodNetworks: dedupNetworks(nets), Others: view.Others, ServiceCIDRs: services}
	return NodeVerdict{View: view, Findings: checker.CheckNode(in, checker.Options{})}
}

// dedupNetworks keeps the first of pod networks with the same prefix: a
// host-local range equal to the node's podCIDR is one network.
func dedupNetworks(nets []checker.PodNetwork) []checker.PodNetwork {
	var out []checker.PodNetwork
	for _, n := range nets {
		if !slices.ContainsFunc(out, func(o checker.PodNetwork) bool { return o.Prefix == n.Prefix }) {
			out = append(out, n)
		}
	}
	return out
}

// nodeTracker remembers the node's error codes from round to round.
type nodeTracker struct {
	codes []checker.Code
}

// update returns the node's transition in this round, if any.
func (t *nodeTracker) update(v NodeVerdict, changes []string) (NodeTransition, bool) {
	now := Verdict{Findings: v.Findings}.Codes()
	kind, ok := kindOf(t.codes, now)
	t.codes = now
	return NodeTransition{Kind: kind, Verdict: v, Changes: changes}, ok
}
