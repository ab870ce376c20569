package checker

import (
	"fmt"
	"net/netip"
)

// PodNetwork is a range this node hands out pod IPs from, and where it is
// configured: "spec.podCIDRs" of the Node, or the IPAM range of a CNI
// configuration file.
type PodNetwork struct {
	Prefix netip.Prefix
	Source string
}

// Node is another node of the cluster, as its Node object says.
type Node struct {
	Name string
	// Addresses are its InternalIP and ExternalIP addresses, by type.
	Addresses map[netip.Addr]string
	PodCIDRs  []netip.Prefix
}

// NodeInput is what the node-wide checks look at: this node's pod
// networks, the cluster's other nodes and the service CIDRs.
type NodeInput struct {
	PodNetworks  []PodNetwork
	Others       []Node
	ServiceCIDRs []netip.Prefix
}

// loopback4 and loopback6 are the ranges the kernel delivers to lo.
var (
	loopback4 = netip.MustParsePrefix("127.0.0.0/8")
	loopback6 = netip.MustParsePrefix("::1/128")
)

// CheckNode runs the node-wide checks (FG050–FG053) and returns the
// findings, in the order of Check. They judge the node's pod networks as
// ranges, before or whatever pods get addresses from them: a range in the
// loopback network, one that holds another node's address, one that
// overlaps another node's pod CIDR or a service CIDR.
func CheckNode(in NodeInput, opts Options) []Finding {
	r := &run{opts: opts}
	for _, pn := range in.PodNetworks {
		r.nodeChecks(pn, in)
	}
	sortFindings(r.findings)
	return r.findings
}

// nodeChecks judges one pod network.
func (r *run) nodeChecks(pn PodNetwork, in NodeInput) {
	p := pn.Prefix.Masked()
	what := fmt.Sprintf("pod network %s (%s)", p, pn.Source)
	if lo := loopbackOf(p); lo.IsValid() {
		rel, which := "is in", "every pod IP in it"
		if p.Bits() < lo.Bits() {
			rel, which = "overlaps", "the pod IPs in "+lo.String()
		}
		r.add(CodeLoopbackNetwork, p.Addr(),
			fmt.Sprintf("%s %s the loopback range %s: the node delivers %s to lo", what, rel, lo, which),
			"give the node a pod range outside "+lo.String()+" (kube-controller-manager --cluster-cidr, the node's podCIDR, the CNI configuration's IPAM ranges)", nil)
	}
	for _, n := range in.Others {
		for a, typ := range n.Addresses {
			if p.Contains(a) {
				r.add(CodeHoldsNodeAddress, a,
					fmt.Sprintf("%s contains %s, the %s of node %s: traffic to that node from here goes to a pod", what, a, typ, n.Name),
					"give the nodes addresses outside every pod range, or the node a pod range without them (kube-controller-manager --cluster-cidr)", nil)
			}
		}
		for _, c := range n.PodCIDRs {
			if p.Overlaps(c) {
				r.add(CodeOverlapsNodeCIDR, p.Addr(),
					fmt.Sprintf("%s overlaps %s, the pod CIDR of node %s: both nodes may give a pod the same IP", what, c.Masked(), n.Name),
					"give every node its own pod range: let kube-controller-manager allocate podCIDRs (--allocate-node-cidrs), or fix the one set by hand", nil)
			}
		}
	}
	for _, s := range in.ServiceCIDRs {
		if p.Overlaps(s) {
			r.add(CodeNetworkOverlapsService, p.Addr(),
				fmt.Sprintf("%s overlaps service CIDR %s: kube-proxy's rules for service IPs would capture pod traffic", what, s.Masked()),
				"choose pod ranges that do not overlap the service CIDR (kube-apiserver --service-cluster-ip-range)", nil)
		}
	}
}

// loopbackOf returns the loopback range p lies in or overlaps, if any.
func loopbackOf(p netip.Prefix) netip.Prefix {
	for _, lo := range []netip.Prefix{loopback4, loopback6} {
		if p.Overlaps(lo) {
			return lo
		}
	}
	return netip.Prefix{}
}
