package checker

import (
	"net"
	"net/netip"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// TestAddressChecks runs Check with the result alone: only the address
// checks can speak.
func TestAddressChecks(t *testing.T) {
	tests := []struct {
		name  string
		ips   []string // "cidr gateway"
		want  []expect
		setup func(res *current.Result)
	}{
		{name: "ordinary IPv4", ips: []string{"10.244.0.5/24 10.244.0.1"}},
		{name: "ordinary IPv6", ips: []string{"fd00:10:244::5/64 fd00:10:244::1"}},
		{name: "IPv6 link-local gateway", ips: []string{"2001:db8:1::5/64 fe80::1"}},
		{name: "/32 with a gateway outside it (Calico, Cilium)", ips: []string{"10.244.0.5/32 169.254.1.1", "10.244.0.6/32 10.244.0.200"}},
		{name: "/31 has no network or broadcast address", ips: []string{"10.244.0.0/31 10.244.0.1"}},
		{name: "no gateway", ips: []string{"10.244.0.5/24"}},
		{name: "loopback", ips: []string{"127.16.0.2/16"}, want: []expect{{code: CodePodReserved, msg: "pod IP 127.16.0.2 is in the loopback range 127.0.0.0/8"}}},
		{name: "this network", ips: []string{"0.1.2.3/8"}, want: []expect{{code: CodePodReserved, msg: "pod IP 0.1.2.3 is in the this-network range 0.0.0.0/8"}}},
		{name: "multicast", ips: []string{"224.0.0.5/24"}, want: []expect{{code: CodePodReserved, msg: "pod IP 224.0.0.5 is a multicast address (224.0.0.0/4)"}}},
		{name: "class E", ips: []string{"240.0.0.5/24"}, want: []expect{{code: CodePodReserved, msg: "pod IP 240.0.0.5 is in the reserved range 240.0.0.0/4"}}},
		{name: "limited broadcast", ips: []string{"255.255.255.255/32"}, want: []expect{{code: CodePodReserved, msg: "pod IP 255.255.255.255 is the limited broadcast address"}}},
		{name: "IPv6 loopback", ips: []string{"::1/128"}, want: []expect{{code: CodePodReserved, msg: "pod IP ::1 is the IPv6 loopback address ::1"}}},
		{name: "IPv6 unspecified", ips: []string{"::/128"}, want: []expect{{code: CodePodReserved, msg: "pod IP :: is the unspecified address ::"}}},
		{name: "IPv6 multicast", ips: []string{"ff02::5/64"}, want: []expect{{code: CodePodReserved, msg: "pod IP ff02::5 is a multicast address (ff00::/8)"}}},
		{name: "IPv4-mapped", ips: []string{"::ffff:10.244.0.5/120"}, want: []expect{{code: CodePodReserved, msg: "pod IP ::ffff:10.244.0.5 is an IPv4-mapped IPv6 address (::ffff:0:0/96)"}}},
		{name: "network address", ips: []string{"10.244.0.0/24 10.244.0.1"}, want: []expect{{code: CodeSubnetEdge, msg: "pod IP 10.244.0.0 is the network address of 10.244.0.0/24"}}},
		{name: "broadcast address", ips: []string{"10.244.0.255/24 10.244.0.1"}, want: []expect{{code: CodeSubnetEdge, msg: "pod IP 10.244.0.255 is the broadcast address of 10.244.0.0/24"}}},
		{name: "pod IP equals gateway", ips: []string{"10.244.0.1/24 10.244.0.1"}, want: []expect{{code: CodePodIsGateway, msg: "pod IP 10.244.0.1 is also its own gateway"}}},
		{name: "IPv6 pod IP equals gateway", ips: []string{"fd00::1/64 fd00::1"}, want: []expect{{code: CodePodIsGateway, msg: "pod IP fd00::1 is also its own gateway"}}},
		{name: "gateway loopback", ips: []string{"10.244.0.5/24 127.0.0.1"}, want: []expect{{code: CodeGatewayBad, msg: "gateway 127.0.0.1 of pod IP 10.244.0.5 is in the loopback range 127.0.0.0/8"}}},
		{name: "gateway multicast", ips: []string{"fd00::5/64 ff02::1"}, want: []expect{{code: CodeGatewayBad, msg: "gateway ff02::1 of pod IP fd00::5 is a multicast address (ff00::/8)"}}},
		{name: "gateway is the broadcast address", ips: []string{"10.244.0.5/24 10.244.0.255"}, want: []expect{{code: CodeGatewayBad, msg: "gateway 10.244.0.255 of pod IP 10.244.0.5 is the broadcast address of 10.244.0.0/24"}}},
		{name: "gateway is the network address", ips: []string{"10.244.0.5/24 10.244.0.0"}, want: []expect{{code: CodeGatewayBad, msg: "gateway 10.244.0.0 of pod IP 10.244.0.5 is the network address of 10.244.0.0/24"}}},
		{name: "IPv4 gateway for an IPv6 address", ips: []string{"fd00::5/64 10.244.0.1"}, want: []expect{{code: CodeGatewayBad, msg: "gateway 10.244.0.1 of pod IP fd00::5 is not an IPv6 address"}}},
		{name: "IPv6 gateway for an IPv4 address", ips: []string{"10.244.0.5/24 fd00::1"}, want: []expect{{code: CodeGatewayBad, msg: "gateway fd00::1 of pod IP 10.244.0.5 is not an IPv4 address"}}},
		{name: "gateway outside the subnet", ips: []string{"10.244.0.5/24 10.245.0.1"}, want: []expect{{code: CodeGatewayOutside, msg: "gateway 10.245.0.1 of pod IP 10.244.0.5 is outside the pod's subnet 10.244.0.0/24"}}},
		{name: "IPv6 gateway outside the subnet", ips: []string{"fd00:1::5/64 fd00:2::1"}, want: []expect{{code: CodeGatewayOutside, msg: "gateway fd00:2::1 of pod IP fd00:1::5 is outside the pod's subnet fd00:1::/64"}}},
		{name: "IPv4 link-local", ips: []string{"169.254.3.4/16 169.254.0.1"}, want: []expect{{code: CodeLinkLocal, sev: SeverityWarning, msg: "pod IP 169.254.3.4 is link-local (169.254.0.0/16)"}}},
		{name: "IPv6 link-local", ips: []string{"fe80::5/64"}, want: []expect{{code: CodeLinkLocal, sev: SeverityWarning, msg: "pod IP fe80::5 is link-local (fe80::/10)"}}},
		{
			name: "several problems, sorted",
			ips:  []string{"169.254.3.4/16", "127.0.0.5/8 127.0.0.5", "10.244.0.0/24 10.245.0.1"},
			want: []expect{
				{code: CodePodReserved, msg: "127.0.0.5"},
				{code: CodeSubnetEdge, msg: "10.244.0.0"},
				{code: CodePodIsGateway, msg: "127.0.0.5"},
				{code: CodeGatewayBad, msg: "127.0.0.5"},
				{code: CodeGatewayOutside, msg: "10.245.0.1"},
				{code: CodeLinkLocal, sev: SeverityWarning, msg: "169.254.3.4"},
			},
		},
		{
			name: "IP config without a mask",
			setup: func(res *current.Result) {
				res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(0), Address: net.IPNet{IP: net.ParseIP("10.244.0.5")}})
			},
			want: []expect{{code: CodeMalformed, msg: "CNI result ips[0] has no valid address"}},
		},
		{
			name: "nil IP config",
			setup: func(res *current.Result) {
				res.IPs = append(res.IPs, nil)
			},
			want: []expect{{code: CodeMalformed, msg: "ips[0]"}},
		},
		{
			name: "address on a host-side interface is not a pod IP",
			setup: func(res *current.Result) {
				res.Interfaces = append(res.Interfaces, &current.Interface{Name: "cni0"})
				res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(1), Address: net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)}})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &current.Result{Interfaces: []*current.Interface{{Name: "eth0", Sandbox: sandboxPath}}}
			addIPs(t, res, 0, tt.ips...)
			if tt.setup != nil {
				tt.setup(res)
			}
			assertFindings(t, Check(Input{Result: res}, Options{}), tt.want)
		})
	}
}

// TestClusterRanges checks pod subnets against service CIDRs and pod IPs
// against cluster CIDRs.
func TestClusterRanges(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	tests := []struct {
		name              string
		ips               []string
		services, cluster []netip.Prefix
		want              []expect
	}{
		{name: "none given", ips: []string{"10.96.0.5/24 10.96.0.1"}},
		{name: "clear", ips: []string{"10.244.0.5/24 10.244.0.1"}, services: pfx("10.96.0.0/12"), cluster: pfx("10.244.0.0/16")},
		{
			name: "pod subnet inside the service CIDR", ips: []string{"10.96.0.5/24 10.96.0.1"}, services: pfx("10.96.0.0/12"),
			want: []expect{{code: CodeServiceCIDR, msg: "pod subnet 10.96.0.0/24 of pod IP 10.96.0.5 overlaps service CIDR 10.96.0.0/12"}},
		},
		{
			name: "pod subnet wider than the service CIDR", ips: []string{"10.0.5.5/8 10.0.0.1"}, services: pfx("10.96.0.0/12"),
			want: []expect{{code: CodeServiceCIDR, msg: "pod subnet 10.0.0.0/8 of pod IP 10.0.5.5 overlaps service CIDR 10.96.0.0/12"}},
		},
		{
			name: "IPv6 service CIDR", ips: []string{"10.244.0.5/24", "fd00:10:96::5/64"}, services: pfx("10.96.0.0/12", "fd00:10:96::/112"),
			want: []expect{{code: CodeServiceCIDR, msg: "pod subnet fd00:10:96::/64 of pod IP fd00:10:96::5 overlaps service CIDR fd00:10:96::/112"}},
		},
		{
			name: "outside the cluster CIDR", ips: []string{"10.200.0.5/24 10.200.0.1"}, cluster: pfx("10.244.0.0/16", "10.245.0.0/16"),
			want: []expect{{code: CodeClusterCIDR, sev: SeverityWarning, msg: "pod IP 10.200.0.5 is outside every cluster CIDR (10.244.0.0/16, 10.245.0.0/16)"}},
		},
		{
			name: "inside the second cluster CIDR", ips: []string{"10.245.0.5/24 10.245.0.1"}, cluster: pfx("10.244.0.0/16", "10.245.0.0/16"),
		},
		{
			name: "only cluster CIDRs of the pod IP's family count", ips: []string{"10.244.0.5/24", "fd00:1::5/64"}, cluster: pfx("10.244.0.0/16"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &current.Result{Interfaces: []*current.Interface{{Name: "eth0", Sandbox: sandboxPath}}}
			addIPs(t, res, 0, tt.ips...)
			got := Check(Input{Result: res, ServiceCIDRs: tt.services, ClusterCIDRs: tt.cluster}, Options{})
			assertFindings(t, got, tt.want)
		})
	}
}
