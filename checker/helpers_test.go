package checker

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// sandboxPath is the Sandbox of the pod interface in hand-built results.
const sandboxPath = "/var/run/netns/pod"

// expect is one finding a test wants, in Check's order: its code and
// severity, and a piece of its message.
type expect struct {
	code Code
	sev  Severity
	msg  string
}

// assertFindings compares findings with what a test wants, printing every
// finding with its fix and trace on a mismatch.
func assertFindings(t *testing.T, got []Finding, want []expect) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		w := want[i]
		sev := w.sev
		if sev == "" {
			sev = SeverityError
		}
		ok = got[i].Code == w.code && got[i].Severity == sev && strings.Contains(got[i].Message, w.msg)
	}
	if ok {
		for _, f := range got {
			if strings.ContainsAny(f.Message, "\n\t") || f.Fix == "" {
				t.Errorf("finding %s: message must be one line and a fix given: %q, fix %q", f.Code, f.Message, f.Fix)
			}
		}
		return
	}
	var b strings.Builder
	for _, f := range got {
		fmt.Fprintf(&b, "  %s %s %s\n    fix: %s\n", f.Code, f.Severity, f.Message, f.Fix)
		for _, s := range f.Trace {
			fmt.Fprintf(&b, "      %s\n", s)
		}
	}
	t.Errorf("findings:\n%swant %d: %+v", b.String(), len(want), want)
}

// apply applies changes to a model, failing the test on error.
func apply(t *testing.T, m *fib.Model, changes ...fib.Change) *fib.Model {
	t.Helper()
	if err := m.Apply(changes...); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return m
}

func link(name string, kind fib.LinkKind) fib.AddLink {
	return fib.AddLink{Link: fib.Link{Name: name, Kind: kind, Up: true, Carrier: true}}
}

func addr(dev, prefix string) fib.AddAddress {
	return fib.AddAddress{Address: fib.Address{Prefix: netip.MustParsePrefix(prefix), Link: dev}}
}

func route(r fib.Route) fib.AddRoute { return fib.AddRoute{Route: r} }

// via is a route to dst through dev, via gw unless gw is "".
func via(dst, gw, dev string) fib.AddRoute {
	nh := fib.NextHop{Link: dev}
	if gw != "" {
		nh.Gateway = netip.MustParseAddr(gw)
	}
	return route(fib.Route{Dst: netip.MustParsePrefix(dst), NextHops: []fib.NextHop{nh}})
}

// bridgeHost is the typical node (lo, eth0 10.0.0.10/24, default via
// 10.0.0.1) with a bridge cni0 holding the given addresses and a host
// veth enslaved to it, as the bridge plugin leaves it.
func bridgeHost(t *testing.T, cni0 ...string) *fib.Model {
	t.Helper()
	m := apply(t, examplenode.Typical(), link("cni0", fib.KindBridge))
	return withBridgeAddrs(t, m, cni0...)
}

func withBridgeAddrs(t *testing.T, m *fib.Model, cni0 ...string) *fib.Model {
	t.Helper()
	br, _ := m.Link("cni0")
	veth := link("veth1", fib.KindVeth)
	veth.Link.Master = br.Index
	apply(t, m, veth)
	for _, a := range cni0 {
		apply(t, m, addr("cni0", a))
	}
	return m
}

// podModel is a pod namespace: lo up with its addresses, eth0 with the
// given addresses, and a default route via each gateway.
func podModel(t *testing.T, addrs []string, gws ...string) *fib.Model {
	t.Helper()
	m := fib.NewModel()
	apply(t, m, fib.LinkUp{Name: "lo"}, addr("lo", "127.0.0.1/8"), addr("lo", "::1/128"), link("eth0", fib.KindVeth))
	for _, a := range addrs {
		apply(t, m, addr("eth0", a))
	}
	for _, gw := range gws {
		dst := "0.0.0.0/0"
		if netip.MustParseAddr(gw).Is6() {
			dst = "::/0"
		}
		apply(t, m, via(dst, gw, "eth0"))
	}
	return m
}

// ipc is an IP config of a hand-built result: "10.244.0.5/24" with an
// optional gateway, on the interface of the given index.
func ipc(t *testing.T, iface int, cidr, gw string) *current.IPConfig {
	t.Helper()
	n, err := types.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("ParseCIDR %q: %v", cidr, err)
	}
	c := &current.IPConfig{Interface: current.Int(iface), Address: *n}
	if gw != "" {
		c.Gateway = net.ParseIP(gw)
	}
	return c
}

// defaultRoutes lists a default route for each gateway's family, as
// host-local with `routes: [{dst: 0.0.0.0/0}]` reports it.
func defaultRoutes(gws ...string) []*types.Route {
	var rs []*types.Route
	for _, gw := range gws {
		dst := "0.0.0.0/0"
		if netip.MustParseAddr(gw).Is6() {
			dst = "::/0"
		}
		_, n, _ := net.ParseCIDR(dst)
		rs = append(rs, &types.Route{Dst: *n, GW: net.ParseIP(gw)})
	}
	return rs
}

// bridgeResult is what the bridge plugin returns: cni0, the host veth,
// the pod's eth0, and one IP config per "cidr gw" pair on eth0.
func bridgeResult(t *testing.T, cidrGW ...string) *current.Result {
	t.Helper()
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: "cni0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: sandboxPath}},
	}
	addIPs(t, res, 2, cidrGW...)
	return res
}

// ptpResult is what the ptp plugin returns: the host veth and the pod's
// eth0.
func ptpResult(t *testing.T, cidrGW ...string) *current.Result {
	t.Helper()
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: "veth1"}, {Name: "eth0", Sandbox: sandboxPath}},
	}
	addIPs(t, res, 1, cidrGW...)
	return res
}

func addIPs(t *testing.T, res *current.Result, iface int, cidrGW ...string) {
	t.Helper()
	for _, s := range cidrGW {
		cidr, gw, _ := strings.Cut(s, " ")
		res.IPs = append(res.IPs, ipc(t, iface, cidr, gw))
	}
}
