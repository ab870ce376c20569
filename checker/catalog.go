package checker

import "slices"

// The checks' codes. They are stable: a code keeps its meaning across
// releases and is never reused, because configurations name them.
const (
	// Host → pod: each pod IP, looked up in the host's model.
	CodeHostLoopback Code = "FG001"
	CodeNodeAddress  Code = "FG002"
	CodeShadowed     Code = "FG003"
	CodeHostRefused  Code = "FG004"
	CodePolicyRule   Code = "FG005"
	CodeNotUnicast   Code = "FG006"

	// Pod → gateway: looked up in the pod's model.
	CodeGateway      Code = "FG010"
	CodeDefaultRoute Code = "FG011"

	// Address sanity: the CNI result alone.
	CodePodReserved    Code = "FG020"
	CodeSubnetEdge     Code = "FG021"
	CodePodIsGateway   Code = "FG022"
	CodeGatewayBad     Code = "FG023"
	CodeGatewayOutside Code = "FG024"
	CodeLinkLocal      Code = "FG025"
	CodeMalformed      Code = "FG026"

	// The cluster's ranges, when configured.
	CodeServiceCIDR Code = "FG030"
	CodeClusterCIDR Code = "FG031"

	// Model vs kernel, when the kernel can be asked.
	CodeModelKernel  Code = "FG040"
	CodeKernelFailed Code = "FG041"

	// The node's pod networks against the cluster (CheckNode).
	CodeLoopbackNetwork        Code = "FG050"
	CodeHoldsNodeAddress       Code = "FG051"
	CodeOverlapsNodeCIDR       Code = "FG052"
	CodeNetworkOverlapsService Code = "FG053"
)

// Info describes a check: its code, the severity of its findings unless
// Options.Severity overrides it, and a title for listings.
type Info struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
}

// catalog lists every check in code order; docs/checks.md documents each.
var catalog = []Info{
	{CodeHostLoopback, SeverityError, "pod IP is delivered locally (to lo) on the host, or refused as loopback"},
	{CodeNodeAddress, SeverityError, "pod IP is an address of the node"},
	{CodeShadowed, SeverityError, "pod IP leaves the host through another device (shadowed pod network)"},
	{CodeHostRefused, SeverityError, "host refuses to route to the pod IP (blackhole, unreachable, prohibit, no route)"},
	{CodePolicyRule, SeverityError, "a policy rule sends the pod IP to another table and device"},
	{CodeNotUnicast, SeverityError, "pod IP is not a unicast destination on the host"},
	{CodeGateway, SeverityError, "pod's gateway does not resolve through the pod's interface"},
	{CodeDefaultRoute, SeverityError, "pod's default route does not resolve through the pod's interface"},
	{CodePodReserved, SeverityError, "pod IP is in a reserved range (loopback, this-network, multicast, class E, unspecified, IPv4-mapped)"},
	{CodeSubnetEdge, SeverityError, "pod IP is the network or broadcast address of its subnet"},
	{CodePodIsGateway, SeverityError, "pod IP equals its gateway"},
	{CodeGatewayBad, SeverityError, "gateway is a reserved, network or broadcast address, or of another family"},
	{CodeGatewayOutside, SeverityError, "gateway is outside the pod's subnet"},
	{CodeLinkLocal, SeverityWarning, "pod IP is link-local"},
	{CodeMalformed, SeverityError, "CNI result holds an IP config without a valid address"},
	{CodeServiceCIDR, SeverityError, "pod subnet overlaps a service CIDR"},
	{CodeClusterCIDR, SeverityWarning, "pod IP is outside every cluster CIDR"},
	{CodeModelKernel, SeverityWarning, "model and kernel disagree on the host's route to a pod IP"},
	{CodeKernelFailed, SeverityWarning, "the kernel could not be asked for the host's route to a pod IP"},
	{CodeLoopbackNetwork, SeverityError, "a pod network of the node is in the loopback range"},
	{CodeHoldsNodeAddress, SeverityError, "a pod network of the node contains another node's address"},
	{CodeOverlapsNodeCIDR, SeverityError, "a pod network of the node overlaps another node's pod CIDR"},
	{CodeNetworkOverlapsService, SeverityError, "a pod network of the node overlaps a service CIDR"},
}

// Catalog returns every check, in code order.
func Catalog() []Info {
	return slices.Clone(catalog)
}

// Known reports whether c is the code of a check.
func Known(c Code) bool {
	_, ok := info(c)
	return ok
}

func info(c Code) (Info, bool) {
	for _, i := range catalog {
		if i.Code == c {
			return i, true
		}
	}
	return Info{}, false
}
