package checker

import (
	"net/netip"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// TestHostToPod runs the host → pod checks on models of typical broken
// and healthy nodes; the address checks run too, so each case lists every
// finding Check gives.
func TestHostToPod(t *testing.T) {
	customRule := fib.AddRule{Rule: fib.Rule{Priority: 1000, Mark: 1, Action: fib.ActionLookup, Table: 100, SuppressPrefixLen: -1, SuppressIfGroup: -1}}
	tests := []struct {
		name   string
		host   func(t *testing.T) *fib.Model
		result func(t *testing.T) *current.Result
		want   []expect
	}{
		{
			name:   "healthy bridge",
			host:   func(t *testing.T) *fib.Model { return bridgeHost(t, "10.244.0.1/24") },
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
		},
		{
			name: "127.16 bridge, merged tables: EINVAL",
			host: func(t *testing.T) *fib.Model { return withBridgeAddrs(t, examplenode.LoopbackBridge()) },
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "127.16.0.2/16 127.16.0.1")
			},
			want: []expect{
				{code: CodeHostLoopback, msg: "pod IP 127.16.0.2 is unreachable from the host: the kernel refuses it (EINVAL: loopback source 127.16.0.1 on cni0, route_localnet=0)"},
				{code: CodePodReserved, msg: "pod IP 127.16.0.2 is in the loopback range 127.0.0.0/8"},
				{code: CodeGatewayBad, msg: "gateway 127.16.0.1 of pod IP 127.16.0.2 is in the loopback range"},
			},
		},
		{
			name: "127.16 bridge, unmerged tables: local",
			host: func(t *testing.T) *fib.Model {
				return apply(t, withBridgeAddrs(t, examplenode.LoopbackBridge()), customRule)
			},
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "127.16.0.2/16 127.16.0.1")
			},
			want: []expect{
				{code: CodeHostLoopback, msg: "pod IP 127.16.0.2 would be delivered to lo, not bridge cni0 (local 127.0.0.0/8 dev lo, table local)"},
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeGatewayBad, msg: "127.16.0.1"},
			},
		},
		{
			name: "127.16 bridge with route_localnet: only the address checks",
			host: func(t *testing.T) *fib.Model {
				return apply(t, withBridgeAddrs(t, examplenode.LoopbackBridge()), fib.SetConf{Dev: "cni0", Conf: fib.DevConf{RouteLocalnet: true}})
			},
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "127.16.0.2/16 127.16.0.1")
			},
			want: []expect{
				{code: CodePodReserved, msg: "127.16.0.2"},
				{code: CodeGatewayBad, msg: "127.16.0.1"},
			},
		},
		{
			name: "pod IP is a node address on another device",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), link("eth1", fib.KindOther), addr("eth1", "10.244.0.7/32"))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.7/24 10.244.0.1") },
			want: []expect{
				{code: CodeNodeAddress, msg: "pod IP 10.244.0.7 is an address of the node (on eth1): the host delivers it to lo, not bridge cni0 (local 10.244.0.7 dev eth1, table local)"},
			},
		},
		{
			name:   "pod IP is the node's eth0 address",
			host:   func(t *testing.T) *fib.Model { return bridgeHost(t, "10.0.0.1/24") },
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.0.0.10/24 10.0.0.1") },
			want: []expect{
				{code: CodeNodeAddress, msg: "pod IP 10.0.0.10 is an address of the node (on eth0)"},
			},
		},
		{
			name:   "pod IP is the bridge's own address",
			host:   func(t *testing.T) *fib.Model { return bridgeHost(t, "10.244.0.1/24") },
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.1/24 10.244.0.1") },
			want: []expect{
				{code: CodeNodeAddress, msg: "pod IP 10.244.0.1 is an address of the node (on cni0)"},
				{code: CodePodIsGateway, msg: "pod IP 10.244.0.1 is also its own gateway"},
			},
		},
		{
			name: "more specific route to another device",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), via("10.244.0.0/25", "10.0.0.1", "eth0"))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP 10.244.0.5 would leave through eth0, not bridge cni0: shadowed by 10.244.0.0/25 via 10.0.0.1 dev eth0, table main"},
			},
		},
		{
			name: "multipath route with a next hop to another device",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), multipathRoute("10.244.0.0/25", fib.NextHop{Link: "cni0"}, fib.NextHop{Link: "eth0", Gateway: netip.MustParseAddr("10.0.0.1")}))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP 10.244.0.5 would leave through eth0, not bridge cni0: shadowed by 10.244.0.0/25, table main (multipath route: the kernel picks one of 2 next hops per flow; 1 of them do so: via 10.0.0.1 dev eth0 src 10.0.0.10)"},
			},
		},
		{
			name: "multipath route with every next hop to the bridge",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), multipathRoute("10.244.0.0/25", fib.NextHop{Link: "cni0"}, fib.NextHop{Link: "cni0", Gateway: netip.MustParseAddr("10.244.0.254")}))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
		},
		{
			name:   "pod network overlaps the node network",
			host:   func(t *testing.T) *fib.Model { return bridgeHost(t, "10.0.0.1/16") },
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.0.0.5/16 10.0.0.1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP 10.0.0.5 would leave through eth0, not bridge cni0: shadowed by 10.0.0.0/24 dev eth0, table main"},
			},
		},
		{
			name: "pod network overlaps another bridge",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/16"), link("docker0", fib.KindBridge), addr("docker0", "10.244.1.1/24"))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.1.5/16 10.244.0.1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP 10.244.1.5 would leave through docker0, not bridge cni0: shadowed by 10.244.1.0/24 dev docker0, table main"},
			},
		},
		{
			name: "blackhole route",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), route(fib.Route{Type: fib.TypeBlackhole, Dst: netip.MustParsePrefix("10.244.0.0/25")}))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeHostRefused, msg: "pod IP 10.244.0.5 is unreachable from the host: the kernel refuses it (EINVAL: blackhole route 10.244.0.0/25 in table main)"},
			},
		},
		{
			name: "prohibit route",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), route(fib.Route{Type: fib.TypeProhibit, Dst: netip.MustParsePrefix("10.244.0.5/32")}))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeHostRefused, msg: "(EACCES: prohibit route 10.244.0.5/32 in table main)"},
			},
		},
		{
			name: "unreachable rule",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), fib.AddRule{Rule: fib.Rule{Priority: 100, Dst: netip.MustParsePrefix("10.244.0.0/24"), Action: fib.ActionUnreachable, SuppressPrefixLen: -1, SuppressIfGroup: -1}})
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeHostRefused, msg: "pod IP 10.244.0.5 is unreachable from the host: the kernel refuses it (ENETUNREACH: rule 100 action unreachable)"},
			},
		},
		{
			name: "blackhole rule",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), fib.AddRule{Rule: fib.Rule{Priority: 100, Dst: netip.MustParsePrefix("10.244.0.0/24"), Action: fib.ActionBlackhole, SuppressPrefixLen: -1, SuppressIfGroup: -1}})
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeHostRefused, msg: "(EINVAL: rule 100 action blackhole)"},
			},
		},
		{
			name: "no route at all",
			host: func(t *testing.T) *fib.Model {
				m := fib.NewModel()
				return withBridgeAddrs(t, apply(t, m, link("cni0", fib.KindBridge)))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeHostRefused, msg: "pod IP 10.244.0.5 is unreachable from the host: the kernel refuses it (ENETUNREACH"},
			},
		},
		{
			name: "rule to another table and device",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"),
					fib.AddRule{Rule: fib.Rule{Priority: 100, Dst: netip.MustParsePrefix("10.244.0.0/16"), Action: fib.ActionLookup, Table: 100, SuppressPrefixLen: -1, SuppressIfGroup: -1}},
					route(fib.Route{Table: 100, Dst: netip.MustParsePrefix("10.244.0.0/16"), NextHops: []fib.NextHop{{Link: "eth0", Gateway: netip.MustParseAddr("10.0.0.1")}}}))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodePolicyRule, msg: `pod IP 10.244.0.5 would leave through eth0, not bridge cni0: rule "100: from all to 10.244.0.0/16 lookup 100" sends it to table 100 (10.244.0.0/16 via 10.0.0.1 dev eth0, table 100)`},
			},
		},
		{
			name: "rule to another table that reaches the bridge",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"),
					fib.AddRule{Rule: fib.Rule{Priority: 100, Dst: netip.MustParsePrefix("10.244.0.0/16"), Action: fib.ActionLookup, Table: 100, SuppressPrefixLen: -1, SuppressIfGroup: -1}},
					route(fib.Route{Table: 100, Dst: netip.MustParsePrefix("10.244.0.0/24"), NextHops: []fib.NextHop{{Link: "cni0"}}}))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "10.244.0.5/24 10.244.0.1") },
		},
		{
			name: "ptp healthy: host veth and /32 route",
			host: func(t *testing.T) *fib.Model {
				return apply(t, examplenode.Typical(), link("veth1", fib.KindVeth), addr("veth1", "10.244.0.1/32"),
					route(fib.Route{Dst: netip.MustParsePrefix("10.244.0.5/32"), Scope: fib.ScopeHost, NextHops: []fib.NextHop{{Link: "veth1"}}}))
			},
			result: func(t *testing.T) *current.Result { return ptpResult(t, "10.244.0.5/24 10.244.0.1") },
		},
		{
			name: "ptp without its host route",
			host: func(t *testing.T) *fib.Model {
				return apply(t, examplenode.Typical(), link("veth1", fib.KindVeth), addr("veth1", "10.244.0.1/32"))
			},
			result: func(t *testing.T) *current.Result { return ptpResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP 10.244.0.5 would leave through eth0, not veth1: the host has no route for the pod network, only default via 10.0.0.1 dev eth0, table main"},
			},
		},
		{
			name: "ptp pod behind another pod's veth",
			host: func(t *testing.T) *fib.Model {
				return apply(t, examplenode.Typical(), link("veth1", fib.KindVeth), link("veth2", fib.KindVeth),
					route(fib.Route{Dst: netip.MustParsePrefix("10.244.0.5/32"), Scope: fib.ScopeLink, NextHops: []fib.NextHop{{Link: "veth2"}}}))
			},
			result: func(t *testing.T) *current.Result { return ptpResult(t, "10.244.0.5/24 10.244.0.1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP 10.244.0.5 would leave through veth2, not veth1: shadowed by 10.244.0.5 dev veth2, table main"},
			},
		},
		{
			name: "pod IP is the bridge subnet's broadcast address",
			host: func(t *testing.T) *fib.Model { return bridgeHost(t, "10.244.0.1/24") },
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "10.244.0.255/24 10.244.0.1")
			},
			want: []expect{
				{code: CodeNotUnicast, msg: "pod IP 10.244.0.255 would be sent as broadcast on cni0, not unicast to bridge cni0 (broadcast 10.244.0.255 dev cni0, table local)"},
				{code: CodeSubnetEdge, msg: "pod IP 10.244.0.255 is the broadcast address of 10.244.0.0/24"},
			},
		},
		{
			name:   "IPv6 healthy",
			host:   func(t *testing.T) *fib.Model { return bridgeHost(t, "fd00:10:244::1/64") },
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "fd00:10:244::5/64 fd00:10:244::1") },
		},
		{
			name: "dual-stack healthy",
			host: func(t *testing.T) *fib.Model { return bridgeHost(t, "10.244.0.1/24", "fd00:10:244::1/64") },
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "10.244.0.5/24 10.244.0.1", "fd00:10:244::5/64 fd00:10:244::1")
			},
		},
		{
			name:   "IPv6 pod IP ::1",
			host:   func(t *testing.T) *fib.Model { return bridgeHost(t, "fd00:10:244::1/64") },
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "::1/128") },
			want: []expect{
				{code: CodeHostLoopback, msg: "pod IP ::1 would be delivered to lo, not bridge cni0 (local ::1 dev lo, table local)"},
				{code: CodePodReserved, msg: "pod IP ::1 is the IPv6 loopback address ::1"},
			},
		},
		{
			name: "dual-stack, IPv6 pod IP is a node address",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24", "fd00:10:244::1/64"), addr("eth0", "fd00:10:244::7/128"))
			},
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "10.244.0.7/24 10.244.0.1", "fd00:10:244::7/64 fd00:10:244::1")
			},
			want: []expect{
				{code: CodeNodeAddress, msg: "pod IP fd00:10:244::7 is an address of the node (on eth0): the host delivers it to lo, not bridge cni0 (local fd00:10:244::7 dev eth0, table local)"},
			},
		},
		{
			name: "IPv6 pod network shadowed by a more specific route",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "fd00:10:244::1/64"), addr("eth0", "fd00:1::10/64"), via("fd00:10:244::/80", "fd00:1::1", "eth0"))
			},
			result: func(t *testing.T) *current.Result { return bridgeResult(t, "fd00:10:244::5/64 fd00:10:244::1") },
			want: []expect{
				{code: CodeShadowed, msg: "pod IP fd00:10:244::5 would leave through eth0, not bridge cni0: shadowed by fd00:10:244::/80 via fd00:1::1 dev eth0, table main"},
			},
		},
		{
			name: "no host side in the result (macvlan): only local delivery counts",
			host: func(t *testing.T) *fib.Model { return examplenode.Typical() },
			result: func(t *testing.T) *current.Result {
				res := &current.Result{Interfaces: []*current.Interface{{Name: "eth0", Sandbox: sandboxPath}}}
				addIPs(t, res, 0, "10.0.0.50/24 10.0.0.1", "10.0.0.10/24 10.0.0.1")
				return res
			},
			want: []expect{
				{code: CodeNodeAddress, msg: "pod IP 10.0.0.10 is an address of the node (on eth0): the host delivers it to lo (local 10.0.0.10 dev eth0, table local)"},
			},
		},
		{
			name: "bridge known only as the veth's master",
			host: func(t *testing.T) *fib.Model {
				return apply(t, bridgeHost(t, "10.244.0.1/24"), via("10.244.0.0/25", "10.0.0.1", "eth0"))
			},
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t)
				res.Interfaces = res.Interfaces[1:]
				addIPs(t, res, 1, "10.244.0.5/24 10.244.0.1")
				return res
			},
			want: []expect{
				{code: CodeShadowed, msg: "not bridge cni0"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(Input{Host: tt.host(t), Result: tt.result(t)}, Options{})
			assertFindings(t, got, tt.want)
			for _, f := range got {
				if f.Code.isHost() && len(f.Trace) == 0 {
					t.Errorf("%s: no trace", f.Code)
				}
			}
		})
	}
}

// isHost reports whether the code is one of the host → pod checks, whose
// findings carry the lookup's trace.
func (c Code) isHost() bool {
	return c >= CodeHostLoopback && c <= CodeNotUnicast
}

// multipathRoute is a main-table route to dst with several next hops.
func multipathRoute(dst string, hops ...fib.NextHop) fib.AddRoute {
	for i := range hops {
		hops[i].Weight = 1
	}
	return route(fib.Route{Family: fib.V4, Table: fib.TableMain, Type: fib.TypeUnicast, Dst: netip.MustParsePrefix(dst), NextHops: hops})
}
