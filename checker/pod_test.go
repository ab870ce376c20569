package checker

import (
	"net/netip"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
)

// TestPodToGateway runs the pod → gateway checks on pod models; the host
// is healthy in every case.
func TestPodToGateway(t *testing.T) {
	tests := []struct {
		name   string
		pod    func(t *testing.T) *fib.Model
		result func(t *testing.T) *current.Result
		want   []expect
	}{
		{
			name: "healthy",
			pod:  func(t *testing.T) *fib.Model { return podModel(t, []string{"10.244.0.5/24"}, "10.244.0.1") },
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1")
				res.Routes = defaultRoutes("10.244.0.1")
				return res
			},
		},
		{
			name: "dual-stack healthy",
			pod: func(t *testing.T) *fib.Model {
				return podModel(t, []string{"10.244.0.5/24", "fd00:10:244::5/64"}, "10.244.0.1", "fd00:10:244::1")
			},
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1", "fd00:10:244::5/64 fd00:10:244::1")
				res.Routes = defaultRoutes("10.244.0.1", "fd00:10:244::1")
				return res
			},
		},
		{
			name: "ptp: gateway outside a /32 reached by a device route",
			pod: func(t *testing.T) *fib.Model {
				m := podModel(t, []string{"10.244.0.5/32"})
				return apply(t, m,
					route(fib.Route{Dst: netip.MustParsePrefix("169.254.1.1/32"), Scope: fib.ScopeLink, NextHops: []fib.NextHop{{Link: "eth0"}}}),
					via("0.0.0.0/0", "169.254.1.1", "eth0"))
			},
			result: func(t *testing.T) *current.Result {
				res := ptpResult(t, "10.244.0.5/32 169.254.1.1")
				res.Routes = defaultRoutes("169.254.1.1")
				return res
			},
		},
		{
			name: "gateway is the pod's own address",
			pod:  func(t *testing.T) *fib.Model { return podModel(t, []string{"10.244.0.5/24"}) },
			result: func(t *testing.T) *current.Result {
				return bridgeResult(t, "10.244.0.5/24 10.244.0.5")
			},
			want: []expect{
				{code: CodeGateway, msg: "gateway 10.244.0.5 of pod IP 10.244.0.5 would be delivered to lo inside the pod, not sent out eth0 (local 10.244.0.5 dev eth0, table local)"},
				{code: CodePodIsGateway, msg: "10.244.0.5"},
			},
		},
		{
			name: "gateway with no route in the pod",
			pod:  func(t *testing.T) *fib.Model { return podModel(t, []string{"10.244.0.5/32"}) },
			result: func(t *testing.T) *current.Result {
				return ptpResult(t, "10.244.0.5/32 10.244.0.1")
			},
			want: []expect{
				{code: CodeGateway, msg: "gateway 10.244.0.1 of pod IP 10.244.0.5 is unreachable inside the pod: the kernel refuses it (ENETUNREACH"},
			},
		},
		{
			name: "gateway reached through another interface",
			pod: func(t *testing.T) *fib.Model {
				m := podModel(t, []string{"10.244.0.5/24"}, "10.244.0.1")
				return apply(t, m, link("net1", fib.KindOther), via("10.244.0.1/32", "", "net1"))
			},
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1")
				res.Routes = defaultRoutes("10.244.0.1")
				return res
			},
			want: []expect{
				{code: CodeGateway, msg: "gateway 10.244.0.1 of pod IP 10.244.0.5 would leave the pod through net1, not eth0 (10.244.0.1 dev net1, table main)"},
			},
		},
		{
			name: "default route listed in the result but missing in the pod",
			pod:  func(t *testing.T) *fib.Model { return podModel(t, []string{"10.244.0.5/24"}) },
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1")
				res.Routes = defaultRoutes("10.244.0.1")
				return res
			},
			want: []expect{
				{code: CodeDefaultRoute, msg: "the pod's IPv4 default route does not work: the kernel refuses 192.0.2.1 inside the pod (ENETUNREACH"},
			},
		},
		{
			name: "default route through another interface wins",
			pod: func(t *testing.T) *fib.Model {
				m := podModel(t, []string{"10.244.0.5/24"})
				return apply(t, m, link("net1", fib.KindOther), addr("net1", "192.168.5.5/24"), via("0.0.0.0/0", "192.168.5.1", "net1"))
			},
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1")
				res.Routes = defaultRoutes("10.244.0.1")
				return res
			},
			want: []expect{
				{code: CodeDefaultRoute, msg: "the pod's IPv4 default route leaves through net1, not eth0 (192.0.2.1 matched default via 192.168.5.1 dev net1, table main)"},
			},
		},
		{
			name: "secondary network without a default route is not judged by the pod's default",
			pod: func(t *testing.T) *fib.Model {
				m := podModel(t, []string{"10.244.0.5/24"}, "10.244.0.1")
				return apply(t, m, link("net1", fib.KindOther), addr("net1", "192.168.5.5/24"))
			},
			result: func(t *testing.T) *current.Result {
				res := &current.Result{Interfaces: []*current.Interface{{Name: "net1", Sandbox: sandboxPath}}}
				addIPs(t, res, 0, "192.168.5.5/24 192.168.5.1")
				return res
			},
		},
		{
			name: "default route is blackholed by a rule",
			pod: func(t *testing.T) *fib.Model {
				m := podModel(t, []string{"10.244.0.5/24"}, "10.244.0.1")
				return apply(t, m,
					fib.AddRule{Rule: fib.Rule{Priority: 100, Action: fib.ActionLookup, Table: 100, SuppressPrefixLen: -1, SuppressIfGroup: -1}},
					route(fib.Route{Table: 100, Type: fib.TypeBlackhole, Dst: netip.MustParsePrefix("0.0.0.0/0")}))
			},
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1")
				res.Routes = defaultRoutes("10.244.0.1")
				return res
			},
			want: []expect{
				{code: CodeGateway, msg: "gateway 10.244.0.1 of pod IP 10.244.0.5 is unreachable inside the pod: the kernel refuses it (EINVAL: blackhole route 0.0.0.0/0 in table 100)"},
				{code: CodeDefaultRoute, msg: "the pod's IPv4 default route does not work: the kernel refuses 192.0.2.1 inside the pod (EINVAL: blackhole route 0.0.0.0/0 in table 100)"},
			},
		},
		{
			name: "a specific route over the first probe does not hide the default route",
			pod: func(t *testing.T) *fib.Model {
				m := podModel(t, []string{"10.244.0.5/24"})
				return apply(t, m, route(fib.Route{Type: fib.TypeBlackhole, Dst: netip.MustParsePrefix("192.0.2.0/24")}))
			},
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "10.244.0.5/24 10.244.0.1")
				res.Routes = defaultRoutes("10.244.0.1")
				return res
			},
			want: []expect{
				{code: CodeDefaultRoute, msg: "the kernel refuses 198.51.100.1 inside the pod (ENETUNREACH"},
			},
		},
		{
			name: "IPv6 default route missing",
			pod:  func(t *testing.T) *fib.Model { return podModel(t, []string{"fd00:10:244::5/64"}) },
			result: func(t *testing.T) *current.Result {
				res := bridgeResult(t, "fd00:10:244::5/64 fd00:10:244::1")
				res.Routes = defaultRoutes("fd00:10:244::1")
				return res
			},
			want: []expect{
				{code: CodeDefaultRoute, msg: "the pod's IPv6 default route does not work: the kernel refuses 2001:db8::1 inside the pod (ENETUNREACH"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.result(t)
			host := bridgeHost(t, "10.244.0.1/24", "fd00:10:244::1/64")
			got := Check(Input{Host: host, Pod: tt.pod(t), Result: res}, Options{})
			// The ptp cases have no bridge: leave the host out of them.
			if res.Interfaces[0].Name != "cni0" {
				got = Check(Input{Pod: tt.pod(t), Result: res}, Options{})
			}
			assertFindings(t, got, tt.want)
		})
	}
}
