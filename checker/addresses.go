package checker

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/fibguard/fibguard/internal/netipx"
)

// Ranges that are never a pod's or a gateway's address.
var (
	zeroNet4      = netip.MustParsePrefix("0.0.0.0/8")
	loopbackNet4  = netip.MustParsePrefix("127.0.0.0/8")
	multicast4    = netip.MustParsePrefix("224.0.0.0/4")
	reserved4     = netip.MustParsePrefix("240.0.0.0/4")
	limitedBcast  = netip.MustParseAddr("255.255.255.255")
	multicast6    = netip.MustParsePrefix("ff00::/8")
	linkLocalNet4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocalNet6 = netip.MustParsePrefix("fe80::/10")
)

// reserved says why an address cannot be a unicast host address, or ""
// when it can.
func reserved(a netip.Addr) string {
	switch {
	case a.Is4() && zeroNet4.Contains(a):
		return "in the this-network range 0.0.0.0/8"
	case a.Is4() && loopbackNet4.Contains(a):
		return "in the loopback range 127.0.0.0/8"
	case a.Is4() && multicast4.Contains(a):
		return "a multicast address (224.0.0.0/4)"
	case a == limitedBcast:
		return "the limited broadcast address"
	case a.Is4() && reserved4.Contains(a):
		return "in the reserved range 240.0.0.0/4"
	case a == netip.IPv6Loopback():
		return "the IPv6 loopback address ::1"
	case a == netip.IPv6Unspecified():
		return "the unspecified address ::"
	case a.Is4In6():
		return "an IPv4-mapped IPv6 address (::ffff:0:0/96)"
	case a.Is6() && multicast6.Contains(a):
		return "a multicast address (ff00::/8)"
	}
	return ""
}

// subnetEdge says whether an IPv4 address is the network or broadcast
// address of the subnet p (for subnets that have them: shorter than /31),
// or "" if it is neither.
func subnetEdge(a netip.Addr, p netip.Prefix) string {
	if !a.Is4() || !p.Addr().Is4() || p.Bits() >= 31 {
		return ""
	}
	net := p.Masked()
	switch a {
	case net.Addr():
		return "the network address of " + net.String()
	case netipx.LastAddr(net):
		return "the broadcast address of " + net.String()
	}
	return ""
}

// exampleRange names a usable private range of the address's family, for
// fixes.
func exampleRange(a netip.Addr) string {
	if a.Is4() {
		return "10.244.0.0/16"
	}
	return "a ULA range such as fd00:10:244::/56"
}

// addressChecks judge the result's addresses without any model: reserved
// pod and gateway addresses, subnet edges, a pod IP equal to its gateway,
// a gateway outside the subnet, link-local pod addresses.
func (r *run) addressChecks() {
	for _, i := range r.net.bad {
		r.add(CodeMalformed, netip.Addr{},
			fmt.Sprintf("CNI result ips[%d] has no valid address with a prefix length", i),
			`fix the IPAM plugin's output: every ips[] entry needs an address with its subnet's prefix length, such as "10.244.0.5/24"`, nil)
	}
	for _, ip := range r.net.ips {
		a := ip.addr()
		if why := reserved(a); why != "" {
			r.add(CodePodReserved, a, fmt.Sprintf("pod IP %s is %s", a, why),
				fmt.Sprintf("give pods ordinary unicast addresses: set the IPAM range to %s or another private range", exampleRange(a)), nil)
		}
		if why := subnetEdge(a, ip.prefix); why != "" {
			r.add(CodeSubnetEdge, a, fmt.Sprintf("pod IP %s is %s", a, why),
				fmt.Sprintf("keep the first and last addresses of %s out of the IPAM range (host-local excludes them unless rangeStart/rangeEnd or a static address includes them)", ip.prefix.Masked()), nil)
		}
		if a.IsLinkLocalUnicast() {
			ll := linkLocalNet4
			if a.Is6() {
				ll = linkLocalNet6
			}
			r.add(CodeLinkLocal, a, fmt.Sprintf("pod IP %s is link-local (%s): nothing beyond its link can reach it", a, ll),
				fmt.Sprintf("give pods routable addresses, such as %s", exampleRange(a)), nil)
		}
		r.gatewayAddressChecks(ip)
	}
}

// gatewayAddressChecks judge an IP config's gateway against its address.
func (r *run) gatewayAddressChecks(ip podIP) {
	a, gw := ip.addr(), ip.gateway
	if !gw.IsValid() {
		return
	}
	subnet := ip.prefix.Masked()
	fixGW := fmt.Sprintf("set the IPAM gateway to the host side's own unicast address in %s (the bridge's address, or the host veth's in ptp setups)", subnet)
	if reserved(a) != "" {
		fixGW = fmt.Sprintf("move the pod network to an ordinary range such as %s and use the host side's address in it as the gateway", exampleRange(a))
	}
	if gw == a {
		r.add(CodePodIsGateway, a, fmt.Sprintf("pod IP %s is also its own gateway", a),
			fmt.Sprintf("give the pod an address other than its gateway %s: keep the gateway out of the IPAM range (host-local rangeStart/rangeEnd)", gw), nil)
	}
	// An IPv4 gateway next to an IPv6 address reads as IPv4-mapped (see
	// addrOf); next to an IPv4-mapped address it is the reserved check's.
	if gw.Is4() != a.Is4() || (gw.Is4In6() && !a.Is4In6()) {
		fam := "IPv6"
		if a.Is4() {
			fam = "IPv4"
		}
		r.add(CodeGatewayBad, a, fmt.Sprintf("gateway %s of pod IP %s is not an %s address", gw.Unmap(), a, fam), fixGW, nil)
		return
	}
	bad := reserved(gw)
	if bad == "" {
		bad = subnetEdge(gw, ip.prefix)
	}
	if bad != "" {
		r.add(CodeGatewayBad, a, fmt.Sprintf("gateway %s of pod IP %s is %s", gw, a, bad), fixGW, nil)
		return
	}
	// A /32 or /128 pod address always reaches its gateway through a device
	// or onlink route (Calico, Cilium), and a link-local gateway is how
	// IPv6 router advertisements and Calico's 169.254.1.1 work: the pod →
	// gateway check judges those with the pod's routes.
	if !subnet.Contains(gw) && !ip.prefix.IsSingleIP() && !gw.IsLinkLocalUnicast() {
		r.add(CodeGatewayOutside, a, fmt.Sprintf("gateway %s of pod IP %s is outside the pod's subnet %s", gw, a, subnet),
			fmt.Sprintf("use a gateway inside %s (the bridge's address), or give the pod the prefix length of the network its gateway is on", subnet), nil)
	}
}

// cidrChecks compare pod subnets with the cluster's service CIDRs and pod
// IPs with its cluster CIDRs.
func (r *run) cidrChecks() {
	for _, ip := range r.net.ips {
		a := ip.addr()
		subnet := ip.prefix.Masked()
		for _, svc := range r.in.ServiceCIDRs {
			if svc.IsValid() && svc.Masked().Overlaps(subnet) {
				r.add(CodeServiceCIDR, a, fmt.Sprintf("pod subnet %s of pod IP %s overlaps service CIDR %s", subnet, a, svc.Masked()),
					fmt.Sprintf("choose a pod range that does not overlap the service CIDR %s (kube-apiserver --service-cluster-ip-range)", svc.Masked()), nil)
			}
		}
		var same []string
		inside := false
		for _, c := range r.in.ClusterCIDRs {
			if !c.IsValid() || c.Addr().Is4() != a.Is4() {
				continue
			}
			same = append(same, c.Masked().String())
			inside = inside || c.Masked().Contains(a)
		}
		if len(same) > 0 && !inside {
			r.add(CodeClusterCIDR, a, fmt.Sprintf("pod IP %s is outside every cluster CIDR (%s)", a, strings.Join(same, ", ")),
				"allocate pod IPs from the node's podCIDR inside the cluster CIDR (kube-controller-manager --cluster-cidr), or add the pod range to clusterCIDRs", nil)
		}
	}
}
